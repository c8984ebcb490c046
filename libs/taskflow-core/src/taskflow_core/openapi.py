"""The OpenAPI document of an API: `/schema` (openapi.json), and bodies that say what they refuse.

Litestar documents msgspec Structs without `additionalProperties`; a Struct that forbids unknown
fields is documented with `additionalProperties: false`, as the server enforces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi import OpenAPIConfig

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition

SCHEMA_PATH = "/schema"


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Structs with `forbid_unknown_fields=True` get `additionalProperties: false`."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


def openapi_config(service: str, version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title=service, version=version, path=SCHEMA_PATH, use_handler_docstrings=True
    )
