"""Magento-shaped web API errors: ``{"message": "... %1 ...", "parameters": [...]}``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sandboxes.commerce.wire import MagentoJSONResponse

MSG_REQUIRED = '"%fieldName" is required. Enter and try again.'
MSG_ENTITY_NOT_FOUND = "The entity that was requested doesn't exist. Verify the entity and try again."
MSG_PRODUCT_NOT_FOUND = "The product that was requested doesn't exist. Verify the product and try again."
MSG_NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
MSG_BAD_SIGN_IN = (
    "The account sign-in was incorrect or your account is disabled temporarily. Please wait and try again later."
)
MSG_INVALID_FIELD_VALUE = 'Invalid value of "%value" provided for the %fieldName field.'
MSG_STORE_NOT_FOUND = "The store that was requested wasn't found. Verify the store and try again."
MSG_ROUTE_NOT_FOUND = "Request does not match any route."


class MagentoError(Exception):
    """An error answered as Magento's webapi ErrorProcessor would."""

    def __init__(
        self,
        status: int,
        message: str,
        parameters: list[Any] | dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.errors:
            body["errors"] = self.errors
        if self.parameters is not None:
            body["parameters"] = self.parameters
        return body


def bad_request(message: str, parameters: list[Any] | dict[str, Any] | None = None) -> MagentoError:
    return MagentoError(400, message, parameters)


def required(field_name: str) -> MagentoError:
    return MagentoError(400, MSG_REQUIRED, {"fieldName": field_name})


def not_found(message: str = MSG_ENTITY_NOT_FOUND, parameters: Any = None) -> MagentoError:
    return MagentoError(404, message, parameters)


async def magento_error_handler(_request: Request, exc: Exception) -> MagentoJSONResponse:
    assert isinstance(exc, MagentoError)
    return MagentoJSONResponse(exc.body(), status_code=exc.status)
