"""Use cases for this node's institution, its biobanks and their collections."""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import Settings, get_settings
from biobank.identity.principal import Principal
from biobank.institutions import repository as repo
from biobank.institutions.models import Biobank, Collection, Institution
from biobank.institutions.schemas import BiobankCreate, BiobankUpdate, CollectionCreate, CollectionUpdate
from biobank.kit.errors import Conflict, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids
from biobank.kit.pagination import PageParams, paginate

COLLECTION_SORTS = {"id": Collection.id, "name": Collection.name, "created_at": Collection.created_at}


def ensure_local_institution(session: Session, settings: Settings | None = None) -> Institution:
    """The row for this node's institution, created from settings on first use."""
    settings = settings or get_settings()
    local = repo.local_institution(session)
    if local is None:
        local = repo.institution_by_code(session, settings.institution_code)
        if local is None:
            local = Institution(
                code=settings.institution_code,
                name=settings.institution_name,
                country=settings.institution_country,
                role=settings.role.value,
            )
            session.add(local)
        local.is_local = True
        session.flush()
    elif local.code != settings.institution_code:
        raise Conflict(
            f"this database belongs to institution {local.code}, but BIOBANK_INSTITUTION_CODE is "
            f"{settings.institution_code}",
            name="InstitutionMismatch",
        )
    return local


def add_peer_institution(
    session: Session,
    actor: Principal,
    *,
    code: str,
    name: str,
    country: str,
    city: str = "",
    role: str = "hospital",
    node_url: str | None = None,
) -> Institution:
    """Register another consortium member (node admins)."""
    if not actor.is_admin:
        raise NotPermitted("only node administrators register institutions")
    if repo.institution_by_code(session, code) is not None:
        raise Conflict(f"institution {code} exists", name="InstitutionExists")
    inst = Institution(code=code, name=name, country=country, city=city, role=role, node_url=node_url)
    session.add(inst)
    session.flush()
    return inst


def get_biobank(session: Session, code: str) -> Biobank:
    """A biobank by code or public id."""
    biobank = repo.biobank_by_code(session, code)
    if biobank is None:
        raise NotFound(f"no biobank {code!r}", name="BiobankNotFound")
    return biobank


def list_biobanks(session: Session) -> list[Biobank]:
    """This node's biobanks."""
    local = repo.local_institution(session)
    return repo.biobanks(session, local.id if local else None)


def create_biobank(session: Session, actor: Principal, data: BiobankCreate) -> Biobank:
    """Create a biobank of this institution (node admins)."""
    if not actor.is_admin:
        raise NotPermitted("only node administrators create biobanks")
    if repo.biobank_by_code(session, data.code) is not None:
        raise Conflict(f"biobank code {data.code!r} is taken", name="BiobankExists")
    local = ensure_local_institution(session)
    biobank = Biobank(public_id=f"{local.code}:{data.code}", institution_id=local.id, **data.model_dump(mode="json"))
    session.add(biobank)
    session.flush()
    audit.record(session, actor, "biobank.create", "biobank", [biobank.public_id])
    return biobank


def update_biobank(session: Session, actor: Principal, biobank: Biobank, data: BiobankUpdate) -> Biobank:
    """Change a biobank's MIABIS attributes (its managers)."""
    return update_biobank_attributes(session, actor, biobank, data.model_dump(mode="json", exclude_unset=True))


def get_collection(session: Session, public_id: str) -> Collection:
    """A collection by public id (catalogue metadata: any member may read it)."""
    collection = repo.collection_by_public_id(session, public_id)
    if collection is None:
        raise NotFound(f"no collection {public_id!r}", name="CollectionNotFound")
    return collection


def list_collections(
    session: Session,
    params: PageParams,
    *,
    biobank: Biobank | None = None,
) -> tuple[list[Collection], int]:
    """A page of collections, optionally of one biobank."""
    params = params.validated(COLLECTION_SORTS)
    return paginate(session, repo.collections_stmt(biobank.id if biobank else None), params, COLLECTION_SORTS, "name")


def create_collection(session: Session, actor: Principal, data: CollectionCreate) -> Collection:
    """Create a collection in a biobank (its managers)."""
    biobank = repo.biobank_by_code(session, data.biobank)
    if biobank is None:
        raise Invalid.field("biobank", "unknown biobank code", value=data.biobank)
    if not actor.can_manage(biobank.id):
        raise NotPermitted("only the biobank's managers create collections")
    local = ensure_local_institution(session)
    (public_id,) = new_public_ids(session, local.code, "COL")
    values = data.model_dump(mode="json", exclude={"biobank"})
    collection = Collection(public_id=public_id, biobank_id=biobank.id, **values)
    session.add(collection)
    session.flush()
    audit.record(session, actor, "collection.create", "collection", [public_id])
    return collection


def update_collection(session: Session, actor: Principal, collection: Collection, data: CollectionUpdate) -> Collection:
    """Change a collection's attributes (its biobank's managers)."""
    return update_collection_attributes(session, actor, collection, data.model_dump(mode="json", exclude_unset=True))


def biobank_codes(session: Session, ids: list[int]) -> dict[int, str]:
    """Biobank codes by row id (for read schemas)."""
    return {i: b.code for i, b in repo.biobanks_by_ids(session, ids).items()}


def collections_by_ids(session: Session, ids: list[int]) -> dict[int, Collection]:
    """Collections by row id (for read schemas of other packages)."""
    return repo.collections_by_ids(session, ids)


def collection_refs(session: Session, ids: list[int]) -> dict[int, tuple[str, int, str]]:
    """Collection row id -> (public id, biobank row id, biobank code), for read schemas of other packages."""
    return repo.collection_refs(session, ids)


def collections_by_public_ids(session: Session, public_ids: list[str]) -> dict[str, Collection]:
    """Collections by public id (bulk lookups)."""
    return repo.collections_by_public_ids(session, public_ids)


# -- for the catalogue (MIABIS attribute editing, public listing) ------------------------------------------

COLLECTION_ATTRIBUTES = frozenset(
    {
        "name",
        "acronym",
        "description",
        "sample_source",
        "sexes",
        "age_low",
        "age_high",
        "age_unit",
        "dataset_types",
        "sample_types",
        "storage_temperatures",
        "diseases",
        "design",
        "use_access_conditions",
        "status",
        "number_of_subjects",
        "inclusion_criteria",
        "publications",
    }
)
BIOBANK_ATTRIBUTES = frozenset(
    {
        "name",
        "acronym",
        "url",
        "juristic_person",
        "contact_email",
        "description",
        "infrastructural_capabilities",
        "organisational_capabilities",
        "bioprocessing_capabilities",
        "quality_standards",
    }
)


def update_collection_attributes(
    session: Session, actor: Principal, collection: Collection, changes: dict[str, object]
) -> Collection:
    """Set any MIABIS attribute of a collection from already-validated values (its biobank's managers)."""
    if not actor.can_manage(collection.biobank_id):
        raise NotPermitted("only the biobank's managers edit its collections")
    unknown = sorted(set(changes) - COLLECTION_ATTRIBUTES)
    if unknown:
        raise Invalid.field(unknown[0], "not a MIABIS attribute of a collection")
    for key, value in changes.items():
        setattr(collection, key, value)
    session.flush()
    audit.record(
        session,
        actor,
        "collection.update",
        "collection",
        [collection.public_id],
        details={"fields": ",".join(sorted(changes))},
    )
    return collection


def update_biobank_attributes(
    session: Session, actor: Principal, biobank: Biobank, changes: dict[str, object]
) -> Biobank:
    """Set any MIABIS attribute of a biobank from already-validated values (its managers)."""
    if not actor.can_manage(biobank.id):
        raise NotPermitted("only the biobank's managers edit it")
    unknown = sorted(set(changes) - BIOBANK_ATTRIBUTES)
    if unknown:
        raise Invalid.field(unknown[0], "not a MIABIS attribute of a biobank")
    for key, value in changes.items():
        setattr(biobank, key, value)
    session.flush()
    audit.record(
        session, actor, "biobank.update", "biobank", [biobank.public_id], details={"fields": ",".join(sorted(changes))}
    )
    return biobank


def all_collections(session: Session) -> list[Collection]:
    """Every collection of this node, by name (the catalogue filters them itself)."""
    return list(session.scalars(repo.collections_stmt().order_by(Collection.name, Collection.id)))


def biobanks_by_ids(session: Session, ids: list[int]) -> dict[int, Biobank]:
    """Biobanks by row id."""
    return repo.biobanks_by_ids(session, ids)


def local_institution(session: Session) -> Institution | None:
    """This node's institution row."""
    return repo.local_institution(session)
