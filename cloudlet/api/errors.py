"""Errors in the contract's format: `{"detail": "<human message>"}`."""

from __future__ import annotations

from fastapi import HTTPException


def not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not found.")


def bad_request(detail: str) -> HTTPException:
    return HTTPException(400, detail)


def conflict(detail: str) -> HTTPException:
    return HTTPException(409, detail)


def unprocessable(detail: str) -> HTTPException:
    return HTTPException(422, detail)


def forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)
