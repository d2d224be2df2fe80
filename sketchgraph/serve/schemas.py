"""The JSON bodies of the HTTP API as pydantic models: what ``POST /predict`` reads, what every endpoint answers,
and the two shapes of an error's ``detail`` (what ``/openapi.json`` documents)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from ..formats.ndjson import ONE_STROKE_HINT, is_one_stroke

__all__ = ["FiniteFloat", "RECORD_FIELDS", "PredictRequest", "PredictionOut", "PredictResponse", "Health", "ClassList",
           "Stats", "Message", "Issue", "Unprocessable", "ONE_STROKE_HINT"]

# strict: a JSON number (integer or not), never a string ("10") or a boolean (true) that lax mode would coerce
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Numbers = Annotated[list[FiniteFloat], Field(fail_fast=True)]
"""A stroke's xs, ys or ts. ``fail_fast`` at every level of the drawing: the first value that is wrong is the one
issue, not one per value (a body of many thousands of strings gave as many issues: seconds of the server's work
and an answer many times the body's size)."""
Drawing = Annotated[list[Annotated[list[Numbers], Field(fail_fast=True)]], Field(fail_fast=True)]

"""The hint for a drawing one level of lists short, as the Python API's readers word it (``formats.ndjson``)."""


RECORD_FIELDS = ("word", "countrycode", "key_id", "recognized", "timestamp")
"""A Quick, Draw! ndjson record's keys besides ``drawing``: accepted and ignored, so a dataset line can be posted as
it is (as the Python API reads such a dict); every other unknown field is refused."""

_IGNORED = "ignored: a Quick, Draw! record's key, accepted so that a dataset line can be posted as it is"


class PredictRequest(BaseModel):
    """A drawing as Quick, Draw! strokes, and how many predictions to return. A Quick, Draw! ndjson record's other
    keys (``RECORD_FIELDS``: word, countrycode, key_id, recognized, timestamp) are accepted and ignored; any other
    field is refused."""

    model_config = ConfigDict(extra="forbid")

    drawing: Drawing = Field(
        description="strokes, each [xs, ys] or [xs, ys, ts] (ts in ms); canvas pixel coordinates",
        examples=[[[[10, 60, 110], [20, 80, 20]], [[10, 110], [100, 100]]]],
    )
    top_k: int = Field(5, ge=1, strict=True,
                       description="number of predictions; above the class count, every class is returned")
    word: Any = Field(None, description=_IGNORED, exclude=True)
    countrycode: Any = Field(None, description=_IGNORED, exclude=True)
    key_id: Any = Field(None, description=_IGNORED, exclude=True)
    recognized: Any = Field(None, description=_IGNORED, exclude=True)
    timestamp: Any = Field(None, description=_IGNORED, exclude=True)

    @field_validator("drawing", mode="before")
    @classmethod
    def _not_one_stroke(cls, value: Any) -> Any:
        """One stroke ``[xs, ys]`` sent as the drawing is one error saying so, not one per number."""
        if is_one_stroke(value):
            raise PydanticCustomError(
                "list_type", f"Input should be a list of strokes [[xs, ys], ...], got lists of numbers "
                             f"({ONE_STROKE_HINT})")
        return value


class PredictionOut(BaseModel):
    """One class and its probability."""

    label: str
    score: float = Field(description="softmax probability")


class PredictResponse(BaseModel):
    """The ``top_k`` most likely classes, best first."""

    predictions: list[PredictionOut]


class Health(BaseModel):
    """The server is up and its model loaded; and the limits a drawing must keep to (``POST /predict``)."""

    status: Literal["ok"]
    model: str = Field(description="the checkpoint's name")
    classes: int = Field(description="how many classes the model knows")
    max_points: int = Field(description="most points a drawing may have (all strokes together)")
    max_strokes: int = Field(description="most strokes a drawing may have (empty ones included)")
    max_ink: int = Field(description="most px of strokes a drawing may have once scaled so that its larger side is "
                                     "255 px (pen-up jumps excluded; real drawings have about 1,000)")
    max_coordinate: float = Field(description="largest magnitude a coordinate (x or y) may have")
    max_time: float = Field(description="largest magnitude a time (ts, ms) may have")
    max_body_bytes: int = Field(description="largest request body accepted, in bytes (413 above)")


class ClassList(BaseModel):
    """The class names the model knows, in logit order."""

    classes: list[str]


class Stats(BaseModel):
    """Requests answered so far, the model calls that answered them, and their ratio (null before any)."""

    requests: int
    model_calls: int
    mean_batch: float | None


class Message(BaseModel):
    """An error said in one sentence."""

    detail: str


class Issue(BaseModel):
    """One problem the request's validation found."""

    loc: list[str | int] = Field(description='where: ["body", "drawing", stroke, list, index], ["body", "top_k"], '
                                             'or ["body", character offset] for JSON syntax')
    msg: str
    type: str = Field(description="pydantic's error type (json_invalid for JSON syntax)")


class Unprocessable(BaseModel):
    """A 422: ``detail`` is a list of ``Issue`` when the body is not valid JSON or breaks the schema (a wrong
    type, nesting or ``top_k``, an unknown field; each names its location), and a sentence when the drawing breaks
    a rule the schema cannot say (empty, lists of different lengths, over a limit) or the body cannot be read at all
    (not UTF-8, an integer of too many digits, nesting too deep, too many arrays)."""

    detail: str | list[Issue]
