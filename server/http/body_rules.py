"""How a request body is checked: the field rules, the model base that applies them, and `parse`.

Each field's rule is a marker in its `Annotated` type (`Text`, `Email`, `Price`, ...) that is
both the pydantic validator and the field's JSON Schema, so the two cannot drift apart. A rule
refuses with `FieldProblem`, whose `{field}` (the field's JSON name) and `{path}` (with its place
in arrays, `items[0].quantity`) `parse` fills in. Fields are checked in the order the model lists
them, and unknown fields are ignored. A field with a default may be absent; the document requires
the others. The bodies themselves are in server/http/requests.py.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError, ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from server.domain import messages
from server.domain.clock import parse_iso
from server.http.errors import ApiError
from server.domain.money import MAX_PRICE_PAISE, InvalidAmount, rupees_to_paise

MAX_STRING = 500
MIN_PASSWORD = 8
MAX_PASSWORD = 200
# Control characters (C0, DEL, C1), bidirectional marks, embeddings, overrides and isolates (the
# "Trojan Source" characters that make a name display differently from what it is), and the
# Unicode line and paragraph separators. A newline is allowed only where `multiline=True`.
_UNSAFE_CLASS = "\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069\\u2028\\u2029"
_UNSAFE_MULTILINE_CLASS = _UNSAFE_CLASS.replace("\\u0000-\\u001f", "\\u0000-\\u0009\\u000b-\\u001f")
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
_UNSAFE_MULTILINE = re.compile(f"[{_UNSAFE_MULTILINE_CLASS}]")
# What `str.strip()` removes besides the unsafe characters, for the document's "not blank" pattern.
_SPACES = " \\u00a0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000"

OBJECT_ID = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
IGNORED = {"description": "ignored for this role"}
UNCHANGED = "null or absent: unchanged"


def has_unsafe_characters(value: str, *, multiline: bool = False) -> bool:
    """True when `value` holds a control, bidirectional-formatting or separator character."""
    return (_UNSAFE_MULTILINE if multiline else _UNSAFE).search(value) is not None


def text_schema(max_length: int, *, multiline: bool = False) -> dict[str, Any]:
    """A required text: no unsafe character anywhere and one that trimming keeps; lengths count
    the text as sent."""
    unsafe = _UNSAFE_MULTILINE_CLASS if multiline else _UNSAFE_CLASS
    spaces = _SPACES + ("\\n" if multiline else "")
    return {"type": "string", "minLength": 1, "maxLength": max_length,
            "pattern": f"^[^{unsafe}]*[^{unsafe}{spaces}][^{unsafe}]*$"}


def optional_text_schema(max_length: int, *, multiline: bool = False) -> dict[str, Any]:
    """An optional text: blank or null means not given."""
    unsafe = _UNSAFE_MULTILINE_CLASS if multiline else _UNSAFE_CLASS
    return {"type": ["string", "null"], "maxLength": max_length, "pattern": f"^[^{unsafe}]*$"}


class FieldProblem(ValueError):
    """A field refused by its rule: a message template and its values besides `{field}` and
    `{path}`; `field` names the field when the error's location cannot (a model-level check)."""

    def __init__(self, template: str, *, field: str | None = None, **values: Any) -> None:
        super().__init__(template)
        self.template = template
        self.field = field
        self.values = values


class Rule:
    """One field's validation and JSON Schema; `required` says whether the document requires it."""

    required: bool = True

    @property
    def keeps_on_null(self) -> bool:
        """Whether null leaves the field as it is (a PATCH): null then changes nothing."""
        return False

    def check(self, value: Any, info: ValidationInfo) -> Any:
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return self.json_schema()


@dataclass(frozen=True)
class Text(Rule):
    """A trimmed, non-empty text without control or bidirectional-formatting characters.

    `required=False`: null or blank is None. `null_unchanged`: null is None (a PATCH leaving it as
    it is) but blank is refused. `only_for`: read only when the body's `role` is one of these,
    and then required. `multiline` allows newlines (`\\r\\n` is kept as `\\n`).
    """

    max_length: int = MAX_STRING
    required: bool = True
    choices: tuple[str, ...] | None = None
    multiline: bool = False
    null_unchanged: bool = False
    only_for: tuple[str, ...] | None = None

    @property
    def keeps_on_null(self) -> bool:
        return self.null_unchanged

    def check(self, value: object, info: ValidationInfo) -> str | None:
        if self.only_for is not None and info.data.get("role") not in self.only_for:
            return None
        if value is None and self.null_unchanged:
            return None
        if value is None or (isinstance(value, str) and not value.strip()):
            if self.required or self.null_unchanged:
                raise FieldProblem(messages.FIELD_REQUIRED)
            return None
        if not isinstance(value, str):
            raise FieldProblem(messages.FIELD_NOT_STRING)
        if self.multiline:
            value = value.replace("\r\n", "\n")
        # Checked before trimming: a tab or newline at either end is refused like one inside.
        if has_unsafe_characters(value, multiline=self.multiline):
            raise FieldProblem(messages.FIELD_UNSAFE_CHARACTERS)
        value = value.strip()
        if len(value) > self.max_length:
            raise FieldProblem(messages.FIELD_TOO_LONG, maximum=self.max_length)
        if self.choices is not None and value not in self.choices:
            raise FieldProblem(messages.FIELD_NOT_CHOICE, choices=", ".join(self.choices))
        return value

    def json_schema(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"type": "string", "enum": [str(choice) for choice in self.choices]}
        if self.null_unchanged:
            return {"anyOf": [text_schema(self.max_length), {"type": "null"}], "description": UNCHANGED}
        if not self.required:
            return optional_text_schema(self.max_length, multiline=self.multiline)
        return text_schema(self.max_length, multiline=self.multiline)


@dataclass(frozen=True)
class Email(Rule):
    """A syntactically valid address, normalised (domain lower-cased, Unicode NFC); no DNS.

    Reserved test domains are allowed only under `ORDERPULSE_ENV=test` (the parse context says)."""

    def check(self, value: Any, info: ValidationInfo) -> str:
        address = Text(254).check(value, info)
        assert address is not None
        test_environment = bool((info.context or {}).get("test_environment"))
        try:
            checked = validate_email(address, check_deliverability=False, test_environment=test_environment)
        except EmailNotValidError:
            raise FieldProblem(messages.FIELD_NOT_EMAIL) from None
        return checked.normalized

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "email", "maxLength": 254}


@dataclass(frozen=True)
class NewPassword(Rule):
    """8-200 characters, one that is not a space, no control characters; kept exactly as typed."""

    def check(self, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
            raise FieldProblem(messages.PASSWORD_LENGTH, minimum=MIN_PASSWORD, maximum=MAX_PASSWORD)
        if not value.strip():
            raise FieldProblem(messages.PASSWORD_BLANK)
        if has_unsafe_characters(value):
            raise FieldProblem(messages.FIELD_UNSAFE_CHARACTERS)
        return value

    def json_schema(self) -> dict[str, Any]:
        return {**text_schema(MAX_PASSWORD), "minLength": MIN_PASSWORD}


@dataclass(frozen=True)
class Password(Rule):
    """A sign-in password, exactly as typed: registration keeps leading and trailing spaces."""

    def check(self, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not value:
            raise FieldProblem(messages.FIELD_REQUIRED)
        if len(value) > MAX_PASSWORD:
            raise FieldProblem(messages.FIELD_TOO_LONG, maximum=MAX_PASSWORD)
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": MAX_PASSWORD}


@dataclass(frozen=True)
class Flag(Rule):
    """true or false; null or absent is `default` (None: unchanged). `null_refused`: only absent
    leaves it unchanged, and null is no boolean (a field whose stored value is never null)."""

    default: bool | None = True
    required: bool = False
    null_refused: bool = False

    @property
    def keeps_on_null(self) -> bool:
        return self.default is None and not self.null_refused

    def check(self, value: Any, info: ValidationInfo) -> bool | None:
        if value is None and not self.null_refused:
            return self.default
        if not isinstance(value, bool):
            raise FieldProblem(messages.FIELD_NOT_BOOLEAN)
        return value

    def json_schema(self) -> dict[str, Any]:
        if self.null_refused:
            return {"type": "boolean", "description": "absent: unchanged"}
        meaning = UNCHANGED if self.default is None else f"null or absent: {str(self.default).lower()}"
        return {"type": ["boolean", "null"], "description": meaning}


@dataclass(frozen=True)
class RequiredFlag(Rule):
    def check(self, value: Any, info: ValidationInfo) -> bool:
        if not isinstance(value, bool):
            raise FieldProblem(messages.FIELD_REQUIRED_BOOLEAN)
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


# A number as JSON writes it (RFC 8259, section 6): ASCII digits only, no sign but `-`, no
# spaces, underscores, `inf` or `nan`, which `float()` and `int()` would accept.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)


def json_number(text: str) -> int | float | None:
    """The number `text` writes in JSON's grammar, as a JSON body would carry it; else None."""
    if not _JSON_NUMBER.fullmatch(text):
        return None
    try:
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:  # more digits than `int()` reads
        return None


@dataclass(frozen=True)
class Price(Rule):
    """A JSON number of rupees above 0, at most 100000, at most 2 decimals; parsed as paise.

    Where the body's numbers arrive as text (CampusBite's FormData, parsed with
    `numbers_as_text`), the text must be a number as JSON writes it, then the same rule applies."""

    required: bool = True

    def check(self, value: Any, info: ValidationInfo) -> int:
        if isinstance(value, str) and (info.context or {}).get("numbers_as_text"):
            number = json_number(value)
            value = value if number is None else number
        try:
            return rupees_to_paise(value)
        except InvalidAmount as exc:
            raise FieldProblem(str(exc)) from None

    def json_schema(self) -> dict[str, Any]:
        return {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_PRICE_PAISE // 100, "multipleOf": 0.01}


@dataclass(frozen=True)
class WholeNumber(Rule):
    """An integer (not a boolean); the range the document states is the service's to enforce."""

    minimum: int
    maximum: int

    def check(self, value: Any, info: ValidationInfo) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldProblem(messages.FIELD_NOT_WHOLE_NUMBER)
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Items(Rule):
    """An array of at most `max_items` entries, each then parsed by the entry model."""

    max_items: int

    def check(self, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise FieldProblem(messages.FIELD_REQUIRED)
        if not isinstance(value, list):
            raise FieldProblem(messages.FIELD_NOT_ARRAY)
        if len(value) > self.max_items:
            raise FieldProblem(messages.FIELD_TOO_MANY, maximum=self.max_items)
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        # An empty cart parses (the checkout answers "Cart is empty"), but is no valid order.
        return {**handler(schema), "minItems": 1, "maxItems": self.max_items}


@dataclass(frozen=True)
class PickupCode(Rule):
    """The pickup code as text or a number (`123` is `"000123"`); trimmed, printable ASCII.
    `unless_manual`: absent is None when the body's `manualConfirm` is true (a staff pickup without the code)."""

    unless_manual: bool = False
    required: bool = True

    def check(self, value: object, info: ValidationInfo) -> str | None:
        if value is None and self.unless_manual and info.data.get("manual_confirm"):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:06d}"
        if not isinstance(value, str) or not value.strip():
            raise FieldProblem(messages.FIELD_REQUIRED)
        value = value.strip()
        # A code of other characters can never match, and comparing it in constant time needs ASCII.
        if not value.isascii() or not value.isprintable():
            raise FieldProblem(messages.OTP_NOT_ASCII)
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "pattern": "^[ -~]*[!-~][ -~]*$"}, {"type": "integer"}]}


# 7 to 15 digits (E.164's most), an optional leading `+`, single spaces or dashes between digits.
PHONE_PATTERN = r"^\+?[0-9](?:[ -]?[0-9]){6,14}$"
PHONE_MAX_LENGTH = 20


@dataclass(frozen=True)
class Phone(Rule):
    """An optional phone number, kept as typed (trimmed); null or blank is none."""

    required: bool = False

    def check(self, value: Any, info: ValidationInfo) -> str | None:
        if isinstance(value, str) and len(value) > PHONE_MAX_LENGTH:  # as sent, spaces too, as the document counts
            raise FieldProblem(messages.FIELD_TOO_LONG, maximum=PHONE_MAX_LENGTH)
        text = Text(PHONE_MAX_LENGTH, required=False).check(value, info)
        if text is not None and not re.fullmatch(PHONE_PATTERN, text):
            raise FieldProblem(messages.FIELD_NOT_PHONE)
        return text

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["string", "null"], "maxLength": PHONE_MAX_LENGTH,
                "pattern": f"^ *(?:{PHONE_PATTERN[1:-1]})? *$"}


@dataclass(frozen=True)
class Passed(Rule):
    """Handed to the service as sent, which checks it in its own order (a checkout token before
    the transaction id it comes with)."""

    schema: dict[str, Any]
    required: bool = True

    def check(self, value: Any, info: ValidationInfo) -> Any:
        return value

    def json_schema(self) -> dict[str, Any]:
        return copy.deepcopy(self.schema)


class RequestModel(BaseModel):
    """A request body: JSON names in camelCase, checked field by field in this order."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True)

    # Per value of `role`, fields the document states differently for that role (its variant
    # of the body's `oneOf`); those fields are then required for it.
    role_variants: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}
    # A change of only the fields sent (a PATCH), refused when it names none: the document then
    # requires at least one field, with a value other than a null that would leave it unchanged.
    needs_a_change: ClassVar[bool] = False
    # Each field may also come under its snake_case name (CampusBite's clients send some that way);
    # the camelCase one wins when both are sent.
    snake_case_too: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _absent_is_null(cls, data: Any) -> Any:
        """An absent field reaches its rule as null, so the rule words the error ("is required")."""
        if isinstance(data, dict) and cls.snake_case_too:
            data = {**{field.alias: data[name] for name, field in cls.model_fields.items()
                       if name in data and field.alias not in data}, **data}
        if isinstance(data, dict):
            absent = {field.alias: None for field in cls.model_fields.values()
                      if field.is_required() and field.alias not in data}
            if absent:
                return {**data, **absent}
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        reference = handler(schema)
        document = handler.resolve_ref_schema(reference)
        for prop in document.get("properties", {}).values():
            prop.pop("title", None)
            prop.pop("default", None)
        fields = {field.alias or name: field for name, field in cls.model_fields.items()}
        rules = {name: _rule_of(field) for name, field in fields.items()}
        document["required"] = [name for name, rule in rules.items()
                                if rule.required and fields[name].is_required() and not getattr(rule, "only_for", None)]
        if not document["required"]:
            del document["required"]
        if cls.needs_a_change:
            document["anyOf"] = [{"required": [name], **({"properties": {name: {"not": {"type": "null"}}}}
                                                         if rule.keeps_on_null else {})}
                                 for name, rule in rules.items()]
        if "role" in rules and isinstance(rules["role"], Text) and rules["role"].choices:
            variants = [_role_variant(document, rules, str(role), cls.role_variants.get(role, {}))
                        for role in rules["role"].choices]
            heading: dict[str, Any] = {key: document[key] for key in ("title", "description") if key in document}
            document.clear()
            document.update({**heading, "oneOf": variants})
        return reference


def _rule_of(field: FieldInfo) -> Rule:
    return next(item for item in field.metadata if isinstance(item, Rule))


def _role_variant(document: dict[str, Any], rules: dict[str, Rule], role: str,
                  overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The body as one role sends it: `role` fixed, that role's fields required, the others ignored."""
    properties = copy.deepcopy(document["properties"])
    required = list(document.get("required", []))
    properties["role"] = {"type": "string", "const": role}
    for name, rule in rules.items():
        only_for = getattr(rule, "only_for", None)
        if only_for is None:
            continue
        if role in only_for:
            required.append(name)
        else:
            properties[name] = dict(IGNORED)
    for name, schema in overrides.items():
        properties[name] = schema
        if name not in required:
            required.append(name)
    return {"title": f"role {role}", "type": "object", "properties": properties, "required": required}


@dataclass(frozen=True)
class DelayMinutes(Rule):
    """Whole minutes from 0 to `maximum`; null or absent leaves the delay as it is."""

    maximum: int
    required: bool = False

    @property
    def keeps_on_null(self) -> bool:
        return True

    def check(self, value: Any, info: ValidationInfo) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= self.maximum:
            raise FieldProblem(messages.DELAY_MINUTES_INVALID, maximum=self.maximum)
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "integer", "minimum": 0, "maximum": self.maximum}, {"type": "null"}],
                "description": UNCHANGED}


@dataclass(frozen=True)
class Moment(Rule):
    """A date and time with its time zone (ISO 8601, `Z` or an offset), as an aware datetime;
    null is a value of its own (e.g. "reopen"), absent leaves it unchanged."""

    message: str
    required: bool = False

    def check(self, value: Any, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        try:
            moment = parse_iso(value) if isinstance(value, str) and len(value) <= 40 else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise FieldProblem(self.message)
        return moment.astimezone(UTC)

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}],
                "description": "null: none; absent: unchanged"}


@dataclass(frozen=True)
class Bounded(Rule):
    """A whole number from `minimum` to `maximum` (not a boolean), refused with `message`;
    `nullable`: null is a value of its own (e.g. "no cap"), absent leaves it unchanged."""

    minimum: int
    maximum: int
    message: str
    nullable: bool = False
    required: bool = False

    def check(self, value: Any, info: ValidationInfo) -> int | None:
        if value is None and self.nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not self.minimum <= value <= self.maximum:
            raise FieldProblem(self.message, maximum=self.maximum)
        return value

    def json_schema(self) -> dict[str, Any]:
        number = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        if self.nullable:
            return {"anyOf": [number, {"type": "null"}], "description": "null: none; absent: unchanged"}
        return number


# --- parsing ------------------------------------------------------------------------------------

Body = TypeVar("Body", bound=RequestModel)


def parse(model: type[Body], data: dict[str, Any], *, test_environment: bool = False,
          numbers_as_text: bool = False) -> Body:
    """The body as `model`, or a `400` naming the first field that breaks its rule.
    `numbers_as_text`: a number may come as its JSON text (a form's fields are all text)."""
    try:
        return model.model_validate(data, context={"test_environment": test_environment,
                                                   "numbers_as_text": numbers_as_text})
    except ValidationError as exc:
        raise ApiError(400, first_problem(exc)) from None


def first_problem(exc: ValidationError) -> str:
    """The message of the first failing field, in the words its rule chose."""
    error = exc.errors(include_url=False)[0]
    # A field whose default was checked is named in Python; any other by its JSON name.
    loc = [to_camel(part) if isinstance(part, str) and "_" in part else part for part in error["loc"]]
    problem = (error.get("ctx") or {}).get("error")
    values: dict[str, Any] = {}
    if isinstance(problem, FieldProblem):
        template, values = problem.template, problem.values
        if problem.field is not None:
            loc = [problem.field]
    elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        template = messages.FIELD_NOT_OBJECT
    else:
        template = messages.FIELD_INVALID
    names = [part for part in loc if isinstance(part, str)]
    path = "".join(f"[{part}]" if isinstance(part, int) else (f".{part}" if index else part)
                   for index, part in enumerate(loc))
    return template.format(field=names[-1] if names else "body", path=path or "body", **values)


# --- Web Push keys ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PushKey(Rule):
    """A base64url key from the browser's `PushSubscription.toJSON()`, of a fixed decoded size."""

    length: int
    what: str

    def check(self, value: Any, info: ValidationInfo) -> str:
        key = Text(200).check(value, info)
        assert key is not None
        raw = decoded_push_key(key, self.length)
        if raw is None or (self.length == 65 and raw[0] != 4):
            raise FieldProblem(messages.PUSH_KEY_INVALID, what=self.what)
        return key

    def json_schema(self) -> dict[str, Any]:
        # base64url of 65 bytes starting 0x04 is "B" and 86 more; of 16 bytes, 22 characters.
        pattern = "^B[A-Za-z0-9_-]{86}=?$" if self.length == 65 else f"^[A-Za-z0-9_-]{{{-(-self.length * 4 // 3)}}}(==)?$"
        return {"type": "string", "pattern": pattern, "description": f"base64url, {self.what}"}


def decoded_push_key(value: str, length: int) -> bytes | None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == length else None


@dataclass(frozen=True)
class Nested(Rule):
    """A JSON object, then parsed by the field's own model."""

    def check(self, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise FieldProblem(messages.FIELD_REQUIRED)
        if not isinstance(value, dict):
            raise FieldProblem(messages.FIELD_NOT_OBJECT)
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return handler(schema)
