"""The `openai` teacher: OpenAI's moderation endpoint, one score per moderation category."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from edgemod.errors import EdgemodError, did_you_mean
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import TeacherContext, register_teacher
from edgemod.training.teachers.http_client import HttpOptions, HttpTeacher, InvalidReply, clip01, parse_options

# The categories of omni-moderation-latest, per the API reference's moderation object
# (https://platform.openai.com/docs/api-reference/moderations/object; the same 13 fields appear in
# the generated clients, e.g. hexdocs ex_openai CreateModerationResponse).
OPENAI_CATEGORIES = [
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors",
    "violence", "violence/graphic",
]


class OpenAIOptions(HttpOptions):
    api_key_env: str = "OPENAI_API_KEY"
    base_url: str = "https://api.openai.com"
    model: str = "omni-moderation-latest"
    batch_size: int = Field(32, ge=1, description="texts per request (the endpoint takes a list)")
    categories: list[str] = Field(default_factory=lambda: list(OPENAI_CATEGORIES), min_length=1,
                                  description="category_scores keys to keep, in this order")


class OpenAIModerationTeacher(HttpTeacher):
    """OpenAI moderation: POST {base_url}/v1/moderations {"model", "input": [texts]} with
    `Authorization: Bearer <key>`; reply `results[i].category_scores` (one result per input, in
    order). Followed: the OpenAI API reference, "Create moderation" and "The moderation object"."""

    kind = "openai"

    def _request(self, texts: list[str], key: str) -> dict[str, Any]:
        return {"url": "/v1/moderations", "headers": {"Authorization": f"Bearer {key}"},
                "json": {"model": self.options.model, "input": texts}}

    def _parse(self, body: Any, texts: list[str]) -> list[list[float]]:
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(texts):
            raise InvalidReply(f"expected 'results' with {len(texts)} entries, got {str(body)[:200]}")
        return [self._row(result) for result in results]

    def _row(self, result: Any) -> list[float]:
        scores = result.get("category_scores") if isinstance(result, dict) else None
        if not isinstance(scores, dict):
            raise InvalidReply("a result has no 'category_scores' object")
        missing = [c for c in self.labels if c not in scores]
        if missing:
            raise EdgemodError(
                f"openai: model '{self.options.model}' returned no score for {missing}"
                f"{did_you_mean(missing[0], scores)}; it scores: {', '.join(scores)}",
                "set options.categories to the categories this model returns")
        # null appears for categories a model version does not score; count it as 'not present'.
        return [0.0 if scores[c] is None else clip01(scores[c], f"score of '{c}'") for c in self.labels]

    def _identity_config(self) -> dict[str, Any]:
        return {"model": self.options.model}


@register_teacher("openai")
def build_openai_teacher(spec: TeacherSpec, context: TeacherContext) -> OpenAIModerationTeacher:
    options = parse_options(OpenAIOptions, spec)
    return OpenAIModerationTeacher(options, options.categories, True, options.batch_size, context)
