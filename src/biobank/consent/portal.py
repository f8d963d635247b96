"""The donor portal (/portal): log in, redeem an invitation, read one's consent in plain language (English
or Chinese), change choices (a new version), withdraw, notifications and access history. Mobile first.

Only users of kind `donor` get past the login; nothing here shows staff names, and staff pages never
show a donor's password (it is only ever hashed by the identity package).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import biobank.web.pages  # noqa: F401 (registers the template filters the pages share)
from biobank.config import get_settings
from biobank.consent import accounts, records, service, withdrawal
from biobank.consent.models import OptionKind, WithdrawalKind
from biobank.consent.schemas import ChoicesChange, InvitationRedeem, WithdrawalCreate
from biobank.consent.views import LANGS, record_views, version_text
from biobank.identity import service as identity
from biobank.identity.deps import client_address, session_principal
from biobank.identity.models import UserKind
from biobank.identity.principal import Principal
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, FieldError, Invalid, NotPermitted
from biobank.web.forms import FormState, FormValues, Outcome, form_data, submit, text
from biobank.web.render import add_template_dir, check_csrf, redirect, render

router = APIRouter(prefix="/portal", include_in_schema=False)
add_template_dir(Path(__file__).parent / "templates")
LANG_COOKIE = "bb_lang"

UI: dict[str, dict[str, str]] = {
    "en": {
        "portal": "My consent",
        "my_consent": "My consent",
        "change": "Change my choices",
        "withdraw": "Withdraw",
        "notifications": "Messages",
        "history": "Who used my samples",
        "login": "Log in",
        "login_title": "Donor portal",
        "username": "Username",
        "password": "Password",
        "password_again": "Password again",
        "have_code": "I have an invitation code",
        "invite_title": "Create your account",
        "invite_intro": "Enter the invitation code the biobank gave you and choose a username and password.",
        "code": "Invitation code",
        "create_account": "Create my account",
        "what_allowed": "What your consent allows",
        "your_answers": "Your answers",
        "yes": "Yes",
        "no": "No",
        "always": "Always applies",
        "timeline": "All versions of your consent",
        "version": "Version",
        "form_version": "form version",
        "given": "given",
        "no_consent": "No consent is recorded for you yet. Please contact the biobank.",
        "withdrawn_note": "You have withdrawn your consent. Your samples and data are not used in new studies.",
        "form_text": "The consent form",
        "choose_use": "How may your samples and data be used?",
        "questions": "Your choices",
        "sign": "Type your full name to sign",
        "confirm": "I have read the consent form and confirm these choices.",
        "save": "Save as a new version",
        "withdraw_title": "Withdraw your consent",
        "withdraw_intro": "You can withdraw at any time without giving a reason. Choose what should happen:",
        "kind_no_further_use": "Do not use my samples and data in any new study.",
        "kind_destroy": "Do not use them again and destroy my remaining samples.",
        "kind_keep_results": "Do not use them again, but results already produced may be kept.",
        "reason": "Reason (optional)",
        "withdraw_confirm": "I understand that this applies at once.",
        "withdraw_button": "Withdraw my consent",
        "no_messages": "No messages.",
        "history_intro": "Every time your samples or data are used or looked at, it is recorded. "
        "Here you see when, by which institution and what was done.",
        "no_history": "Nothing yet.",
        "when": "When",
        "institution": "Institution",
        "what": "What",
        "sample": "Sample",
        "switch": "中文",
        "new_version_available": "A new version of the consent form is available.",
        "valid_until": "valid until",
    },
    "zh": {
        "portal": "我的知情同意",
        "my_consent": "我的知情同意",
        "change": "更改我的选择",
        "withdraw": "撤回",
        "notifications": "消息",
        "history": "谁使用了我的样本",
        "login": "登录",
        "login_title": "捐赠者门户",
        "username": "用户名",
        "password": "密码",
        "password_again": "再次输入密码",
        "have_code": "我有邀请码",
        "invite_title": "创建您的账户",
        "invite_intro": "请输入生物样本库给您的邀请码，并设置用户名和密码。",
        "code": "邀请码",
        "create_account": "创建账户",
        "what_allowed": "您的知情同意允许",
        "your_answers": "您的回答",
        "yes": "是",
        "no": "否",
        "always": "始终适用",
        "timeline": "您的知情同意的所有版本",
        "version": "版本",
        "form_version": "同意书版本",
        "given": "签署于",
        "no_consent": "尚未记录您的知情同意。请联系生物样本库。",
        "withdrawn_note": "您已撤回知情同意。您的样本和数据不会用于新的研究。",
        "form_text": "知情同意书",
        "choose_use": "您的样本和数据可以如何使用？",
        "questions": "您的选择",
        "sign": "请输入您的全名以签署",
        "confirm": "我已阅读知情同意书并确认以上选择。",
        "save": "保存为新版本",
        "withdraw_title": "撤回知情同意",
        "withdraw_intro": "您可以随时撤回，无需说明理由。请选择之后的处理方式：",
        "kind_no_further_use": "不再将我的样本和数据用于任何新的研究。",
        "kind_destroy": "不再使用，并销毁我剩余的样本。",
        "kind_keep_results": "不再使用，但已经产生的结果可以保留。",
        "reason": "理由（可选）",
        "withdraw_confirm": "我了解撤回立即生效。",
        "withdraw_button": "撤回我的知情同意",
        "no_messages": "没有消息。",
        "history_intro": "您的样本或数据每一次被使用或查看都会被记录。您可以在这里看到时间、机构和操作。",
        "no_history": "暂无记录。",
        "when": "时间",
        "institution": "机构",
        "what": "操作",
        "sample": "样本",
        "switch": "English",
        "new_version_available": "知情同意书有新版本。",
        "valid_until": "有效期至",
    },
}


class PortalLoginRequired(Exception):
    """A portal page was asked for without a session: go to the portal's login."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


async def _to_login(request: Request, exc: Exception) -> Response:
    target = exc.target if isinstance(exc, PortalLoginRequired) else "/portal"
    return RedirectResponse("/portal/login?" + urlencode({"next": target}), status_code=303)


def setup(app: FastAPI) -> None:
    """Anonymous visitors of portal pages go to the portal login."""
    if PortalLoginRequired not in app.exception_handlers:
        app.add_exception_handler(PortalLoginRequired, _to_login)


def donor_principal(request: Request, principal: Annotated[Principal | None, Depends(session_principal)]) -> Principal:
    """The logged-in donor, a redirect to the portal login, or 403 for staff."""
    if principal is None:
        raise PortalLoginRequired(request.url.path)
    if principal.kind != UserKind.DONOR:
        raise NotPermitted("the donor portal is for donors; staff use the main pages", name="NotADonor")
    return principal


DonorPrincipal = Annotated[Principal, Depends(donor_principal)]
Posted = Annotated[FormValues, Depends(form_data)]


def lang_of(request: Request) -> str:
    """The page language: ?lang=, else the remembered choice, else English."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    remembered = request.cookies.get(LANG_COOKIE)
    return remembered if remembered in LANGS else "en"


def _page(
    request: Request, template: str, principal: Principal | None, *, status_code: int = 200, **context: Any
) -> Response:
    lang = lang_of(request)
    response = render(
        request,
        template,
        principal,
        status_code=status_code,
        lang=lang,
        t=UI[lang],
        other_lang="zh" if lang == "en" else "en",
        **context,
    )
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in LANGS:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", secure=get_settings().secure_cookies
        )
    return response


def _safe_next(target: str) -> str:
    return target if target.startswith("/portal") and not target.startswith("//") else "/portal"


def _login_response(session: Any, request: Request, user: Any, target: str, flash: str | None = None) -> Response:
    token, _ = identity.start_session(session, user, client=identity.client_hash(client_address(request)))
    settings = get_settings()
    response = redirect(target, flash=flash)
    response.set_cookie(
        settings.session_cookie_name,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_hours * 3600,
    )
    return response


# -- login and invitation ------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/portal") -> Response:
    """The donors' login form."""
    return _page(request, "consent/portal/login.html", None, next=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/portal",
) -> Response:
    """Check a donor's credentials and start a session; staff accounts are sent to the staff login."""
    client = identity.client_hash(client_address(request))
    try:
        user = identity.authenticate(session, username, password, client=client)
    except BiobankError as exc:
        session.commit()  # the failed attempt counts for throttling
        return _page(
            request,
            "consent/portal/login.html",
            None,
            status_code=exc.status_code,
            next=_safe_next(next),
            error=str(exc.detail),
            username=username,
        )
    if user.kind != UserKind.DONOR:
        session.rollback()
        return _page(
            request,
            "consent/portal/login.html",
            None,
            status_code=403,
            next="/portal",
            error="This login is for donors. Staff log in at /login.",
            username=username,
        )
    return _login_response(session, request, user, _safe_next(next))


@router.get("/invite", response_class=HTMLResponse)
def invite_page(request: Request) -> Response:
    """Redeem an invitation code: the donor chooses a username and a password."""
    return _page(request, "consent/portal/invite.html", None, form=FormState(name="invite"))


@router.post("/invite", response_class=HTMLResponse)
def redeem(request: Request, session: DbSession, form: Posted) -> Response:
    """Create the donor's account, log them in and show their consent."""
    values = {k: text(form, k) for k in ("code", "username", "password", "password_again")}

    def run() -> Any:
        if values["password"] != values["password_again"]:
            raise Invalid([FieldError(["password_again"], "the two passwords differ")])
        data = InvitationRedeem.model_validate({k: values[k] for k in ("code", "username", "password")})
        return accounts.redeem(session, data, client=identity.client_hash(client_address(request)))

    outcome = _run(session, run)
    if not outcome.ok:
        shown = {k: v for k, v in values.items() if "password" not in k}
        return _page(
            request,
            "consent/portal/invite.html",
            None,
            status_code=outcome.status_code,
            form=outcome.state("invite", shown),
            outcome=outcome,
        )
    user, _donor = outcome.value
    return _login_response(session, request, user, "/portal", flash="Welcome. Your account is ready.")


def _run(session: Any, call: Any) -> Outcome:
    """submit(), with pydantic errors turned into field errors too."""
    from pydantic import ValidationError

    from biobank.web.forms import invalid_from_validation

    def guarded() -> Any:
        try:
            return call()
        except ValidationError as exc:
            raise invalid_from_validation(exc) from None

    return submit(session, guarded)


# -- the donor's pages -----------------------------------------------------------------------------------------


def _common(session: Any, principal: Principal) -> dict[str, Any]:
    donor = records.own_donor(session, principal)
    return {"donor": donor, "unread": accounts.unread(session, donor), "section": "portal"}


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: DbSession, principal: DonorPrincipal) -> Response:
    """The donor's current consent in plain language, and every earlier version."""
    common = _common(session, principal)
    donor = common["donor"]
    lang = lang_of(request)
    timeline = records.timeline(session, principal, donor)
    views = record_views(session, timeline, lang)
    current = next((v for v in views if v.is_current), None)
    signable = records.signable_version(session, donor)
    newer = current is not None and signable is not None and signable.public_id != current.form_version
    return _page(
        request,
        "consent/portal/home.html",
        principal,
        current=current,
        timeline=views,
        newer_version=newer,
        tab="home",
        **common,
    )


def _change_page(
    request: Request,
    session: Any,
    principal: Principal,
    *,
    form: FormState | None = None,
    outcome: Outcome | None = None,
) -> Response:
    common = _common(session, principal)
    donor = common["donor"]
    lang = lang_of(request)
    version = records.signable_version(session, donor)
    current = records.current(session, donor)
    options = records.options_of_version(session, version) if version else []
    choices = dict(current.choices) if current else {o.code: o.default for o in options}
    zh = lang == "zh"
    rows = [
        {
            "code": o.code,
            "kind": str(o.kind),
            "label": o.label_zh if zh and o.label_zh else o.label_en,
            "explanation": o.explanation_zh if zh and o.explanation_zh else o.explanation_en,
            "value": bool(choices.get(o.code, o.default)),
        }
        for o in options
    ]
    return _page(
        request,
        "consent/portal/change.html",
        principal,
        status_code=outcome.status_code if outcome and not outcome.ok else 200,
        version=version,
        version_text=version_text(version, lang) if version else "",
        permissions=[r for r in rows if r["kind"] == OptionKind.PERMISSION],
        questions=[r for r in rows if r["kind"] == OptionKind.CHOICE],
        conditions=[r for r in rows if r["kind"] == OptionKind.CONDITION],
        form=form or FormState(name="change"),
        outcome=outcome,
        tab="change",
        **common,
    )


@router.get("/consent/change", response_class=HTMLResponse)
def change_page(request: Request, session: DbSession, principal: DonorPrincipal) -> Response:
    """The choices of the newest form version, filled in with the current answers."""
    return _change_page(request, session, principal)


@router.post("/consent/change", response_class=HTMLResponse)
def change(request: Request, session: DbSession, principal: DonorPrincipal, form: Posted) -> Response:
    """Save the choices as a new version of the donor's consent, e-signed with the typed name."""
    check_csrf(principal, text(form, "csrf_token"))
    donor = records.own_donor(session, principal)
    version = records.signable_version(session, donor)
    options = records.options_of_version(session, version) if version else []
    permission = text(form, "permission")
    choices: dict[str, bool] = {}
    for o in options:
        if o.kind == OptionKind.PERMISSION:
            choices[o.code] = o.code == permission
        elif o.kind == OptionKind.CHOICE and text(form, f"choice.{o.code}") in ("yes", "no"):
            choices[o.code] = text(form, f"choice.{o.code}") == "yes"

    def run() -> Any:
        if text(form, "confirm") != "on":
            raise Invalid([FieldError(["confirm"], "tick the box to confirm your choices")])
        data = ChoicesChange(
            choices=choices, signed_name=text(form, "signed_name"), version=version.public_id if version else None
        )
        return service.change_choices(session, principal, donor, data)

    outcome = _run(session, run)
    if not outcome.ok:
        return _change_page(request, session, principal, form=outcome.state("change", dict(form)), outcome=outcome)
    return redirect("/portal", flash=f"Saved: your consent is now version {outcome.value.version}.")


@router.get("/withdraw", response_class=HTMLResponse)
def withdraw_page(request: Request, session: DbSession, principal: DonorPrincipal) -> Response:
    """Explain the three kinds of withdrawal and ask which one."""
    return _page(
        request,
        "consent/portal/withdraw.html",
        principal,
        form=FormState(name="withdraw"),
        kinds=[k.value for k in WithdrawalKind],
        tab="withdraw",
        **_common(session, principal),
    )


@router.post("/withdraw", response_class=HTMLResponse)
def withdraw(request: Request, session: DbSession, principal: DonorPrincipal, form: Posted) -> Response:
    """Withdraw the donor's consent at once."""
    check_csrf(principal, text(form, "csrf_token"))
    donor = records.own_donor(session, principal)

    def run() -> Any:
        if text(form, "confirm") != "on":
            raise Invalid([FieldError(["confirm"], "tick the box to confirm")])
        data = WithdrawalCreate.model_validate({"kind": text(form, "kind"), "reason": text(form, "reason")})
        return withdrawal.withdraw(session, principal, donor, data, channel="portal")

    outcome = _run(session, run)
    if not outcome.ok:
        return _page(
            request,
            "consent/portal/withdraw.html",
            principal,
            status_code=outcome.status_code,
            form=outcome.state("withdraw", dict(form)),
            outcome=outcome,
            kinds=[k.value for k in WithdrawalKind],
            tab="withdraw",
            **_common(session, principal),
        )
    return redirect("/portal", flash="Your withdrawal is recorded. 您的撤回已记录。")


@router.get("/notifications", response_class=HTMLResponse)
def notifications(request: Request, session: DbSession, principal: DonorPrincipal) -> Response:
    """Messages from the biobank (reading them marks them read)."""
    common = _common(session, principal)
    rows = accounts.notifications(session, principal, common["donor"], mark_read=True)
    common["unread"] = 0
    return _page(
        request, "consent/portal/notifications.html", principal, notifications=rows, tab="notifications", **common
    )


@router.get("/history", response_class=HTMLResponse)
def history(request: Request, session: DbSession, principal: DonorPrincipal) -> Response:
    """Which institutions did what with the donor's samples and data, and when (never which person)."""
    common = _common(session, principal)
    rows = accounts.access_history(session, principal, common["donor"], lang=lang_of(request))
    return _page(request, "consent/portal/history.html", principal, events=rows, tab="history", **common)
