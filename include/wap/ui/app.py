"""The "WAP reviews" view: a FastAPI app the plugin mounts at ``/wap`` on Airflow's API server.

Routes (all need an authenticated Airflow user who may read the DAG; see :mod:`wap.ui.auth`):

- ``GET /wap/reviews``: the DAG's runs with review id, state and headline numbers;
- ``GET /wap/reviews/{dag_id}/{run_id}``: one review, rendered from the audit's XCom;
- ``POST /wap/reviews/{dag_id}/{run_id}/decision``: approve or reject that review (form, see below);
- ``GET /wap/api/reviews/{dag_id}/{run_id}``: the same review as JSON (state, decision, report schema v1).

Everything is read from Airflow's metadata database through the API server's session; the warehouse is never
opened here. A decision goes through :func:`wap.approval.reviews.decide`, the same code as ``wap approve``: only
the open review, only by a user allowed to edit the approval Variable, only with the form token of that user's page.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from airflow.api_fastapi.common.db.common import SessionDep as Session
from fastapi import Depends, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from wap.approval.protocol import decided_by_variable, value_for
from wap.approval.reviews import Review, ReviewError, decide, describe, get_review, list_reviews, variable_value
from wap.config import WapError, load_config
from wap.ui import auth
from wap.ui.pages import render

#: Pages of this app may only be framed by Airflow's own UI (the nav entry shows them in an iframe).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "frame-ancestors 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: The nav entry's icon: a magnifier over a check mark.
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><circle cx="10" cy="10" r="7"/>'
    '<path d="m21 21-6-6"/><path d="m7 10 2 2 4-4"/></svg>'
)

User = Annotated[Any, Depends(auth.current_user)]


def _config():
    try:
        return load_config()
    except WapError as error:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"WAP configuration: {error}") from None


def _dag_id_allowed(dag_id: str, user: Any) -> None:
    """Only the configured WAP DAG, and only for a user who may read it (its XComs are its reports)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    if dag_id != _config().dag_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{dag_id} is not the WAP DAG ({_config().dag_id})")
    if not get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.XCOM, details=DagDetails(id=dag_id), user=user
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{auth.user_name(user)} may not read {dag_id}'s runs")


def review_url(dag_id: str, run_id: str) -> str:
    return f"/wap/reviews/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def _decided_by(approval_variable: str, review: Review) -> dict[str, Any] | None:
    """Who decided this review through `wap approve|reject` or this view, if that record names it."""
    raw = variable_value(decided_by_variable(approval_variable))
    try:
        record = json.loads(raw) if raw else None
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("review_id") == review.review_id else None


def _history_cycles(review: Review) -> list[dict[str, Any]] | None:
    """The cycles the review page's series show (the last is this one); None before a second cycle."""
    cycles = ((review.policy or {}).get("history") or {}).get("cycles") or []
    return cycles if len(cycles) >= 2 else None


def _html(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def create_app() -> FastAPI:
    app = FastAPI(title="WAP reviews", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(auth.LoginRequired)
    async def _login_required(request: Request, error: auth.LoginRequired) -> Response:
        # A browser asking for a page goes to Airflow's login and comes back; anything else gets 401, no data.
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path  # as the browser sent it
            next_url = path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(auth.login_url(next_url), status_code=status.HTTP_303_SEE_OTHER)
        return JSONResponse({"detail": error.detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return _html(render("error.html", status_code=error.status_code, message=error.detail), error.status_code)
        return JSONResponse({"detail": error.detail}, status_code=error.status_code)

    @app.get("/", include_in_schema=False)
    def index(user: User) -> RedirectResponse:
        return RedirectResponse("/wap/reviews", status_code=status.HTTP_303_SEE_OTHER)

    @app.get("/icon.svg", include_in_schema=False)
    def icon(user: User) -> Response:
        return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/reviews", response_class=HTMLResponse)
    def reviews_page(user: User, session: Session) -> HTMLResponse:
        config = _config()
        _dag_id_allowed(config.dag_id, user)
        reviews = list_reviews(config.dag_id, session=session)
        return _html(render("reviews.html", config=config, reviews=reviews, review_url=review_url, user=user))

    @app.get("/reviews/{dag_id}/{run_id}", response_class=HTMLResponse)
    def review_page(dag_id: str, run_id: str, user: User, session: Session, decided: str | None = None):
        _dag_id_allowed(dag_id, user)
        config = _config()
        review = get_review(dag_id, run_id, session=session)
        if review is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{dag_id} has no run {run_id}")
        value = variable_value(config.approval_variable)
        can_decide = review.is_open and auth.can_edit_variable(user, config.approval_variable)
        return _html(
            render(
                "review.html",
                config=config,
                review=review,
                report=review.report,
                user=user,
                variable_value=value,
                verdict=describe(value, review),
                decided_by=_decided_by(config.approval_variable, review) if review.review_id else None,
                can_edit=auth.can_edit_variable(user, config.approval_variable),
                can_decide=can_decide,
                form_token=auth.form_token(user, dag_id, run_id, review.review_id) if can_decide else None,
                instruction=(
                    {verb: value_for(verb, review.review_id) for verb in ("approve", "reject")}
                    if review.review_id
                    else None
                ),
                decided=decided if decided in ("approve", "reject") else None,
                decision_url=review_url(dag_id, run_id) + "/decision",
                history_cycles=_history_cycles(review),
            )
        )

    @app.post("/reviews/{dag_id}/{run_id}/decision")
    def decision(
        request: Request,
        dag_id: str,
        run_id: str,
        user: User,
        session: Session,
        verb: Annotated[str, Form()],
        review_id: Annotated[str, Form()],
        token: Annotated[str, Form()] = "",
    ) -> Response:
        auth.check_same_origin(request)
        _dag_id_allowed(dag_id, user)
        config = _config()
        if not auth.can_edit_variable(user, config.approval_variable):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{auth.user_name(user)} may not edit the Variable {config.approval_variable}: only a user allowed "
                "to edit Variables can approve or reject.",
            )
        auth.check_form_token(token, user, dag_id, run_id, review_id)
        try:
            review = get_review(dag_id, run_id, session=session)
            if review is None or review.review_id != review_id:
                raise ReviewError(f"run {run_id} of {dag_id} has no review {review_id}: refusing to {verb} it")
            decide(
                config.approval_variable,
                dag_id,
                verb,
                review_id,
                session=session,
                user=auth.user_name(user),
                user_id=str(user.get_id()),
                via="the WAP review page",
            )
        except ReviewError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        return RedirectResponse(f"{review_url(dag_id, run_id)}?decided={verb}", status_code=status.HTTP_303_SEE_OTHER)

    @app.get("/api/reviews/{dag_id}/{run_id}")
    def review_json(dag_id: str, run_id: str, user: User, session: Session) -> JSONResponse:
        _dag_id_allowed(dag_id, user)
        review = get_review(dag_id, run_id, session=session)
        if review is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{dag_id} has no run {run_id}")
        body = {
            "dag_id": review.dag_id,
            "run_id": review.run_id,
            "run_state": review.run_state,
            "review_id": review.review_id,
            "state": review.state,
            "decision": review.decision,
            "report": review.report,
        }
        return JSONResponse(json.loads(json.dumps(body, default=str)), headers={"Cache-Control": "no-store"})

    return app
