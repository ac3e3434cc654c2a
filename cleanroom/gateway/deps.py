"""FastAPI dependencies: the services object, the bearer principal, and role checks.

Authentication runs as a dependency, before a route reads its body, so an unauthenticated or
wrong-role caller is refused before a byte of an upload is spooled. Every refusal is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cleanroom.errors import AuthError
from cleanroom.gateway.auth import Principal, Role
from cleanroom.gateway.services import Services

bearer = HTTPBearer(auto_error=False, description="An API key minted by `cleanroom apikey create` (crk_...).")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _where(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def current_principal(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller behind ``Authorization: Bearer <key>``; ``auth.missing`` / ``auth.invalid`` otherwise."""
    client = request.client.host if request.client else ""
    if credentials is None:
        services.keys.fail("missing", where=_where(request), client=client)
        raise AuthError("auth.missing", "send the API key as 'Authorization: Bearer crk_...'")
    return services.keys.authenticate(credentials.credentials, where=_where(request), client=client)


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting only keys whose role is one of ``roles`` (else ``auth.forbidden``, audited)."""

    def dependency(
        request: Request,
        services: Annotated[Services, Depends(get_services)],
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.role not in roles:
            services.keys.fail("forbidden", where=_where(request), actor=principal.actor, key_id=principal.key_id, role=principal.role)
            raise AuthError(
                "auth.forbidden",
                f"a {principal.role} key may not call {_where(request)} (needs: {', '.join(roles)})",
                role=principal.role,
                allowed=list(roles),
            )
        return principal

    return dependency


ServicesDep = Annotated[Services, Depends(get_services)]
AnyPrincipal = Annotated[Principal, Depends(current_principal)]

__all__ = ["AnyPrincipal", "ServicesDep", "bearer", "current_principal", "get_services", "require"]
