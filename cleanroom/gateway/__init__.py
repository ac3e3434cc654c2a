"""The gateway: FastAPI app, API keys, the one problem+json renderer, and the Services it routes to.

    create_app(GatewayConfig) -> FastAPI        app.py
    GatewayConfig, Limits                       config.py
    Services                                    services.py  (state; the release path is wired here)
    ApiKeys, Principal, KeyInfo                 auth.py      (keys hashed in <store>/gateway.sqlite)
    Problem, problem_response                   problems.py  (RFC 9457, one shape for every error)
"""

from __future__ import annotations

from cleanroom.gateway.app import create_app
from cleanroom.gateway.auth import ROLES, ApiKeys, KeyInfo, Principal, Role
from cleanroom.gateway.config import GatewayConfig, Limits
from cleanroom.gateway.problems import PROBLEM_MEDIA_TYPE, Problem, problem_response
from cleanroom.gateway.services import Services

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ROLES",
    "ApiKeys",
    "GatewayConfig",
    "KeyInfo",
    "Limits",
    "Principal",
    "Problem",
    "Role",
    "Services",
    "create_app",
    "problem_response",
]
