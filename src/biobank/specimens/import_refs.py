"""Specimen import, pass 2: references resolved against the database in bulk, and the write plan.

Collections, donors (by pseudonym or public id), boxes and positions, parents (an earlier row or an
existing specimen) are looked up with one query per kind, never one per row; a barcode that exists
already is compared column by column (unchanged rows are skipped, so re-running a file creates nothing).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank.institutions.models import Biobank
from biobank.kit.errors import Invalid
from biobank.specimens import rules
from biobank.specimens.import_cells import _ALIQUOT, _POOL, _RECEIVED, _STORED, TIME_COLUMNS, CellPass
from biobank.specimens.import_lookups import (
    EXISTING_COLUMNS,
    BoxInfo,
    boxes_of,
    collections_of,
    donors_by,
    drawn_by_children,
    existing_specimens,
    occupied_slots,
    pseudonyms_for,
)
from biobank.specimens.import_write import PLANNED_COLUMNS, WritePlan
from biobank.specimens.importer_io import TimeFormatter, dialect_of
from biobank.specimens.models import Status

NEW_STATUSES = frozenset(s.value for s in (Status.COLLECTED, Status.RECEIVED, Status.PROCESSED, Status.STORED))
DRAWABLE = frozenset({Status.RECEIVED.value, Status.PROCESSED.value, Status.STORED.value})

# Columns compared when a barcode already exists (the donor and place columns are compared through
# what they resolve to).
COMPARED = (
    "collection", "sample_type", "detailed_type", "donor_patient_id", "donor", "donor_sex", "donor_birth_year",
    "parent_barcode", "lineage", "collected_at", "received_at", "processed_at", "frozen_at", "container",
    "sprec_code", "anatomical_site", "diagnosis", "quantity", "quantity_unit", "concentration",
    "concentration_unit", "freeze_thaw_count", "storage_temperature", "status", "box", "position", "notes",
)
# Compared as they are; the others through what they resolve to (see Batch._compare).
_DIRECT = frozenset({
    "sample_type", "detailed_type", "lineage", "container", "sprec_code", "anatomical_site", "diagnosis",
    "collected_at", "received_at", "processed_at", "frozen_at", "quantity_unit", "concentration_unit",
    "freeze_thaw_count", "storage_temperature", "status", "notes",
})


class Batch(CellPass):
    """A file's rows after pass 1, resolved against the database (pass 2) into a write plan."""

    # -- pass 2: references, against the database in bulk -----------------------------------------

    def resolve(self, session: Session, biobank: Biobank) -> WritePlan:
        """Resolve collections, donors, boxes, positions and parents; compare existing barcodes."""
        n, raw, v = self.n, self.raw, self.v
        barcodes = v["barcode"]
        parents = raw["parent_barcode"]
        self.existing = existing_specimens(session, list(dict.fromkeys([*barcodes, *filter(None, parents)])))
        if self.existing:
            for i, barcode in enumerate(barcodes):
                found = self.existing.get(barcode)
                if found is None:
                    continue
                self.creating[i] = False
                if found.biobank_id != biobank.id:
                    self.error(i, "barcode", barcode, "the barcode is already in use outside this biobank")
        plan = WritePlan(biobank_id=biobank.id, biobank_code=biobank.code, rows_in_file=n, unchanged=0)
        self._collections(session, biobank)
        self._donors(session, biobank, plan)
        self._places(session, biobank)
        v["status"] = [
            s or (_STORED if b is not None else _RECEIVED) for s, b in zip(v["status"], v["box_id"], strict=True)
        ]
        if not set(v["status"]) <= NEW_STATUSES or _POOL in v["lineage"]:  # else no row can be wrong here
            rows = zip(v["status"], v["lineage"], self.creating, strict=True)
            for i, (status, lineage, creating) in enumerate(rows):
                if not creating:
                    continue
                if status not in NEW_STATUSES:
                    self.error(i, "status", status, "a new specimen is collected, received, processed or stored")
                if lineage == _POOL:
                    self.error(i, "lineage", lineage, "pools are made in the app (POST /api/v1/specimens/pools)")
        self._parents(session, plan)
        v["storage_temperature"] = [
            box_temperature if box_temperature and temperature is None else temperature
            for temperature, box_temperature in zip(v["storage_temperature"], v["_box_temperature"], strict=True)
        ]
        plan.unchanged = self._compare()
        return plan

    def _collections(self, session: Session, biobank: Biobank) -> None:
        known = collections_of(session, biobank.id)
        refs = self.raw["collection"]
        ids: dict[str, int] = {}
        for ref in set(refs):
            found = known.get(ref) or known.get("\x00" + ref.casefold(), 0) if ref else None
            ids[ref] = found or 0
        for i, ref in enumerate(refs):
            if ref and not ids[ref]:
                self.error(i, "collection", ref, f"no collection with this public id or acronym in {biobank.code}")
        self.v["collection_id"] = [ids[ref] or None for ref in refs]

    def _donors(self, session: Session, biobank: Biobank, plan: WritePlan) -> None:
        """Donors by patient id (through the pseudonym) or public id; unknown patients with a sex are new."""
        n, raw, v = self.n, self.raw, self.v
        patients, refs, sexes, years = raw["donor_patient_id"], raw["donor"], v["_sex"], v["_birth_year"]
        donor_ids: list[int | None] = [None] * n
        new_of: list[str | None] = [None] * n
        v["donor_id"], v["_new_donor"] = donor_ids, new_of
        rows = [i for i in range(n) if patients[i] or refs[i] or sexes[i] is not None or years[i] is not None]
        if not rows:
            return
        pseudonyms = pseudonyms_for(patients[i] for i in rows if patients[i])
        by_pseudonym = donors_by(session, "pseudonym", sorted(set(pseudonyms.values())), biobank.id)
        by_public_id = donors_by(session, "public_id", sorted({refs[i] for i in rows if refs[i]}), None)
        first_row: dict[str, int] = {}
        for i in rows:
            patient, ref, sex, year = patients[i], refs[i], sexes[i], years[i]
            donor = None
            if ref:
                donor = by_public_id.get(ref)
                if donor is None or donor.biobank_id != biobank.id:
                    self.error(i, "donor", ref, f"no donor with this public id in {biobank.code}")
                    continue
            if patient:
                pseudonym = pseudonyms[patient]
                registered = by_pseudonym.get(pseudonym)
                if donor is not None and (registered is None or registered.id != donor.id):
                    self.error(i, "donor_patient_id", patient, f"this patient is not donor {ref}")
                    continue
                if registered is None:
                    if sex is None:
                        if not raw["donor_sex"][i]:
                            self.error(i, "donor_patient_id", patient, "unknown donor: give donor_sex to register them")
                        continue
                    self._new_donor(i, pseudonym, patient, sex, year, first_row, plan)
                    continue
                donor = registered
            if donor is None:
                column = "donor_sex" if sex is not None else "donor_birth_year"
                self.error(i, column, raw[column][i], "give donor_patient_id or donor for the donor's details")
                continue
            if sex is not None and sex != donor.sex:
                self.error(i, "donor_sex", sex, f"the donor is registered as {donor.sex}")
            if year is not None and donor.birth_year is not None and year != donor.birth_year:
                self.error(i, "donor_birth_year", year, f"the donor is registered as born in {donor.birth_year}")
            donor_ids[i] = donor.id

    def _new_donor(
        self, i: int, pseudonym: str, patient: str, sex: str, year: int | None, first_row: dict[str, int],
        plan: WritePlan,
    ) -> None:
        known = plan.new_donors.get(pseudonym)
        if known is None:
            plan.new_donors[pseudonym] = (sex, year, patient)
            first_row[pseudonym] = i
        else:
            first = self.lines[first_row[pseudonym]]
            if sex != known[0]:
                self.error(i, "donor_sex", sex, f"differs from row {first} for the same patient")
            elif year is not None and known[1] is not None and year != known[1]:
                self.error(i, "donor_birth_year", year, f"differs from row {first} for the same patient")
            elif year is not None and known[1] is None:
                plan.new_donors[pseudonym] = (sex, year, patient)
        self.v["_new_donor"][i] = pseudonym

    def _places(self, session: Session, biobank: Biobank) -> None:
        """Boxes and positions; two rows in one position, or a position already taken, are errors."""
        from biobank.storage import service as storage

        n, raw, v = self.n, self.raw, self.v
        box_ids: list[int | None] = [None] * n
        grid_rows: list[int | None] = [None] * n
        grid_cols: list[int | None] = [None] * n
        box_temperatures: list[str | None] = [None] * n
        v["box_id"], v["row"], v["col"], v["_box_temperature"] = box_ids, grid_rows, grid_cols, box_temperatures
        refs, labels = raw["box"], raw["position"]
        rows = [i for i in range(n) if refs[i] and labels[i]]
        if not rows:
            return
        boxes = boxes_of(session, biobank.id, sorted({refs[i] for i in rows}))
        occupied = occupied_slots(session, sorted({b.ident for b in boxes.values() if isinstance(b, BoxInfo)}))
        positions: dict[tuple[Any, ...], tuple[int, int] | str] = {}
        taken: dict[tuple[int, int, int], int] = {}
        for i in rows:
            ref, label = refs[i], labels[i]
            box = boxes.get(ref)
            if box is None or isinstance(box, str):
                self.error(i, "box", ref, box or "no box with this public id, path or name in this biobank")
                continue
            key = (*box.shape, label)
            where = positions.get(key)
            if where is None:
                try:
                    where = storage.parse_position(box.unit, label)
                except Invalid as exc:
                    where = exc.errors[0]["msg"]
                positions[key] = where
            if isinstance(where, str):
                self.error(i, "position", label, where)
                continue
            slot = (box.ident, where[0], where[1])
            box_ids[i], grid_rows[i], grid_cols[i] = slot
            box_temperatures[i] = box.temperature
            if not self.creating[i]:
                continue
            shown = label.upper()
            if slot in taken:
                self.error(i, "position", shown, f"row {self.lines[taken[slot]]} already puts a specimen in {shown}")
            elif slot in occupied:
                self.error(i, "position", shown, f"{shown} of this box is occupied by specimen {occupied[slot]}")
            else:
                taken[slot] = i

    def _parents(self, session: Session, plan: WritePlan) -> None:
        """Parents (an earlier row or an existing specimen): state, lineage, inherited donor, draws."""
        n, raw, v = self.n, self.raw, self.v
        parents = raw["parent_barcode"]
        parent_ids: list[int | None] = [None] * n
        parent_rows: list[int | None] = [None] * n
        v["parent_id"], v["_parent_row"] = parent_ids, parent_rows
        children = [i for i in range(n) if parents[i] and parents[i] != raw["barcode"][i]]
        if not children:
            return
        first: dict[str, int] = {}
        for i, barcode in enumerate(v["barcode"]):
            first.setdefault(barcode, i)
        factors: dict[tuple[str, str], float] = {}  # (unit, parent's unit) -> conversion factor
        remaining: dict[int, float] = {}  # in-file parent row -> quantity left
        db_remaining: dict[int, float] = {}
        for i in children:
            ref = parents[i]
            row = first.get(ref)
            existing = self.existing.get(ref)
            if row is not None and row < i and self.creating[row]:
                if self.bad[row]:
                    self.bad[i] = 1  # the parent's own error is reported on its row
                    continue
                parent_rows[i] = row
                status, sample_type, checked_out = v["status"][row], v["sample_type"][row], None
                quantity, unit = v["quantity"][row], v["quantity_unit"][row]
                donor_id, new_donor = v["donor_id"][row], v["_new_donor"][row]
            elif existing is not None and existing.biobank_id == plan.biobank_id:
                parent_ids[i] = existing.id
                status, sample_type, checked_out = existing.status, existing.sample_type, existing.checked_out_at
                quantity, unit = existing.quantity, existing.quantity_unit
                donor_id, new_donor = existing.donor_id, None
            else:
                if row is not None and row > i:
                    message = f"the parent is on row {self.lines[row]}, below; list parents first"
                else:
                    message = "no specimen with this barcode in this biobank or above"
                self.error(i, "parent_barcode", ref, message)
                continue
            if v["donor_id"][i] is None and v["_new_donor"][i] is None:
                v["donor_id"][i], v["_new_donor"][i] = donor_id, new_donor
            if not self.creating[i]:
                continue
            if status not in DRAWABLE or checked_out is not None:
                self.error(i, "parent_barcode", ref, f"the parent is {status}; only received, processed or stored "
                           "specimens that are not checked out give aliquots")
                continue
            lineage = v["lineage"][i]
            if lineage == _ALIQUOT and v["sample_type"][i] and v["sample_type"][i] != sample_type:
                self.error(i, "sample_type", v["sample_type"][i],
                           f"an aliquot has its parent's sample type ({sample_type}); use lineage derivative")
                continue
            amount = v["quantity"][i]
            if lineage != _ALIQUOT or amount is None or quantity is None or unit is None or self.bad[i]:
                continue
            try:
                pair = (v["quantity_unit"][i], unit)
                factor = factors.get(pair)
                if factor is None:
                    factor = factors[pair] = rules.convert_quantity(1.0, *pair)
                used = amount * factor
            except ValueError:
                self.error(i, "quantity_unit", v["quantity_unit"][i],
                           f"cannot draw {v['quantity_unit'][i]} from a parent measured in {unit}")
                continue
            pool, key = (remaining, row) if parent_rows[i] is not None else (db_remaining, parent_ids[i])
            assert key is not None
            left = pool.get(key, quantity) - used
            if left < -rules.EPSILON:
                self.error(i, "quantity", raw["quantity"][i],
                           f"the children in this file draw more than the {quantity:g} {unit} of parent {ref}")
                continue
            pool[key] = left
        for row, left in remaining.items():
            v["quantity"][row] = round(max(0.0, left), 9)
        if db_remaining:
            before = {e.id: e.quantity for e in self.existing.values()}
            for parent_id, left in db_remaining.items():
                plan.parent_draws[parent_id] = (before[parent_id], round(max(0.0, left), 9))

    def _compare(self) -> int:
        """Existing barcodes: unchanged rows are counted; a stated column that differs is an error.

        Compared column by column over the existing rows (one comprehension per column), in the
        form the database keeps: times as the stored text on SQLite, as datetimes on PostgreSQL.
        """
        rows = [i for i in range(self.n) if not self.creating[i] and not self.bad[i]]
        if not rows:
            return 0
        raw, v = self.raw, self.v
        olds = [self.existing[v["barcode"][i]] for i in rows]
        units = {o.id: o.quantity_unit for o in olds if o.quantity is not None and o.quantity_unit}
        drawn = drawn_by_children(self._session, units) if units else {}
        stored_time = TimeFormatter(dialect_of(self._session))
        differing: dict[int, list[str]] = {}
        position = {name: k for k, name in enumerate(EXISTING_COLUMNS)}
        place = list(zip(v["box_id"], v["row"], v["col"], strict=True))
        quantities = v["quantity"]
        for column in COMPARED:
            if column not in self.index:
                continue
            t = raw[column]  # a column is compared where the row states it
            pairs = zip(rows, olds, strict=True)
            if column in TIME_COLUMNS:
                k, values = position[column], v[column]
                wrong = [i for i, old in pairs if t[i] and stored_time(values[i]) != old[k]]
            elif column in _DIRECT:
                k, values = position[column], v[column]
                wrong = [i for i, old in pairs if t[i] and values[i] != old[k]]
            elif column == "collection":
                k, values = position["collection_id"], v["collection_id"]
                wrong = [i for i, old in pairs if t[i] and values[i] != old[k]]
            elif column in ("donor_patient_id", "donor"):
                k, new, values = position["donor_id"], v["_new_donor"], v["donor_id"]
                wrong = [i for i, old in pairs if t[i] and (new[i] is not None or values[i] != old[k])]
            elif column == "parent_barcode":
                k, values = position["parent_id"], v["parent_id"]
                wrong = [i for i, old in pairs if t[i] and (values[i] is None or values[i] != old[k])]
            elif column in ("box", "position"):
                wrong = [i for i, old in pairs if t[i] and place[i] != (old.box_id, old.row, old.col)]
            elif column == "quantity":
                # What is left now, or what there was before the existing aliquots were drawn.
                wrong = [
                    i
                    for i, old in pairs
                    if t[i]
                    and not _close(quantities[i], old.quantity)
                    and not (old.quantity is not None and _close(quantities[i], old.quantity + drawn.get(old.id, 0)))
                ]
            elif column == "concentration":
                wrong = [i for i, old in pairs if t[i] and not _close(v["concentration"][i], old.concentration)]
            else:  # donor_sex, donor_birth_year: already checked against the donor
                wrong = []
            for i in wrong:
                differing.setdefault(i, []).append(column)
        for i in sorted(differing):
            columns = differing[i]
            many = len(columns) > 1
            self.error(
                i, columns[0], raw[columns[0]][i],
                f"barcode exists with different data (column{'s' if many else ''} {', '.join(columns)} "
                f"{'differ' if many else 'differs'})",
            )
        return len(rows) - len(differing)

    # -- the write plan --------------------------------------------------------------------------

    def fill(self, plan: WritePlan) -> None:
        """Put the rows to create, as columns, into the plan."""
        v = self.v
        keep = [i for i in range(self.n) if self.creating[i] and not self.bad[i]]
        every = len(keep) == self.n
        position = {row: k for k, row in enumerate(keep)}
        for name in PLANNED_COLUMNS:
            column = v[name]
            plan.columns[name] = column if every else [column[i] for i in keep]
        plan.new_donor_of = v["_new_donor"] if every else [v["_new_donor"][i] for i in keep]
        plan.parent_index = [position[p] if p is not None else None for p in (v["_parent_row"][i] for i in keep)]
        parents = self.raw["parent_barcode"]
        plan.parent_barcode = [parents[i] if v["parent_id"][i] is not None else "" for i in keep]
        used = set(plan.new_donor_of)
        plan.new_donors = {p: d for p, d in plan.new_donors.items() if p in used}
        for box_id in plan.columns["box_id"]:
            if box_id is not None:
                plan.box_counts[box_id] = plan.box_counts.get(box_id, 0) + 1


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))

