"""The `hive` teacher: Hive text moderation through its synchronous task API."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from edgemod.errors import EdgemodError, did_you_mean
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import TeacherContext, register_teacher
from edgemod.training.teachers.http_client import HttpOptions, HttpTeacher, InvalidReply, clip01, number, parse_options


class HiveOptions(HttpOptions):
    api_key_env: str = "HIVE_API_KEY"
    base_url: str = "https://api.thehive.ai"
    classes: list[str] = Field(min_length=1, description="response classes to keep, in this order")
    # The key picks the Hive project (and so the model); name it so a change of project can be
    # recorded in the identity without the key ever entering it.
    model: str = "text-moderation"
    # Hive text moderation reports severity levels 0-3 per class (-1: head unsupported for the
    # detected language), per docs.thehive.ai "Text Moderation - Overview"; divide to get [0, 1].
    score_scale: float = Field(3.0, gt=0)


class HiveTextTeacher(HttpTeacher):
    """Hive text moderation, synchronous task API: POST {base_url}/api/v2/task/sync with
    `Authorization: Token <key>` and form field `text_data`; reply
    `status[0].response.output[*].classes[*] = {class, score}`, one output per text chunk.
    Followed: docs.thehive.ai "Using Text Moderation API" / "sync task request" and the
    "Text Moderation" response reference."""

    kind = "hive"

    def __init__(self, options: HiveOptions, context: TeacherContext):
        super().__init__(options, options.classes, True, 1, context)

    def _request(self, texts: list[str], key: str) -> dict[str, Any]:
        (text,) = texts
        return {"url": "/api/v2/task/sync", "headers": {"Authorization": f"Token {key}"},
                "data": {"text_data": text}}

    def _parse(self, body: Any, texts: list[str]) -> list[list[float]]:
        task = _hive_task(body)
        outputs = (task.get("response") or {}).get("output") or []
        best: dict[str, float] = {}
        for chunk in outputs:  # long texts come back as several chunks: keep the worst
            for entry in chunk.get("classes", []) if isinstance(chunk, dict) else []:
                name, score = entry.get("class"), entry.get("score")
                if name in self.labels:
                    # -1 (head unsupported for the language) clips to 0: nothing detected.
                    value = clip01(number(score, f"score of '{name}'") / self.options.score_scale, name)
                    best[name] = max(best.get(name, 0.0), value)
        seen = {e.get("class") for c in outputs if isinstance(c, dict) for e in c.get("classes", [])}
        if seen and (missing := [c for c in self.labels if c not in seen]):
            raise EdgemodError(
                f"hive: the response has no class '{missing[0]}'{did_you_mean(missing[0], map(str, seen))}; "
                f"it returns: {', '.join(sorted(map(str, seen)))}",
                "fix options.classes to names the Hive project returns")
        # No output at all: Hive found no supported language, so nothing was flagged.
        return [[best.get(c, 0.0) for c in self.labels]]

    def _identity_config(self) -> dict[str, Any]:
        return {"model": self.options.model, "score_scale": self.options.score_scale}


def _hive_task(body: Any) -> dict:
    statuses = body.get("status") if isinstance(body, dict) else None
    if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
        raise InvalidReply(f"no 'status' list in the reply: {str(body)[:200]}")
    task = statuses[0]
    code = str(task.get("status", {}).get("code", "0"))
    if code != "0":
        raise InvalidReply(f"the task failed: {task.get('status')}")
    return task


@register_teacher("hive")
def build_hive_teacher(spec: TeacherSpec, context: TeacherContext) -> HiveTextTeacher:
    return HiveTextTeacher(parse_options(HiveOptions, spec), context)
