"""One sample's transcript, read from its Inspect log on demand (never synced).

FLE's ``sample.messages`` holds little more than the first user line; what the agent
did is in the sample's **events**: each model event's output is the agent's program,
and what the game said back reaches the agent as the new user (or tool) messages of
the next model call (FLE puts the program's output and the next observation there),
or as tool events for tool-using solvers. ``read_transcript`` walks the events in
order and returns one entry per turn part:

``{"n", "step", "role", "text"}``: ``role`` is ``task`` (the sample's input, step 0),
``game`` (what the agent was shown),
``agent`` (its program), ``info`` (FLE's progress notes), ``score`` (intermediate and
final scores), ``error`` or ``limit``; ``step`` counts model calls (the agent's steps).

The sample is read through inspect_ai's public API (``read_eval_log_sample``, pools and
attachments resolved). inspect_ai 0.3.285 cannot read a *chunked* sample, so for one
the shell, ``metadata.json`` and the ``messages``/``events``/``calls``/``attachments``
sequences are assembled from the zip (``log_zip``) into the same ``EvalSample`` dict and
validated and resolved by inspect_ai's public ``EvalSample`` and
``resolve_sample_attachments``: both shapes give the same transcript (tested).
"""

from __future__ import annotations

from typing import Any

from fle_core.sources.inspect_logs import LogRef
from fle_core.sources.log_zip import LogReadError, ZipLog, sample_layout

#: Characters kept of one entry's text (a full observation can be very long).
MAX_CHARS = 20_000


def read_transcript(
    ref: LogRef, sample_id: str, epoch: int, max_chars: int = MAX_CHARS
) -> list[dict[str, Any]]:
    """Every entry of one sample's transcript (see the module doc), each text cut to
    ``max_chars``. ``LogReadError`` naming the log when the sample cannot be read."""
    try:
        sample = _read_sample(ref, str(sample_id), int(epoch))
    except LogReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - shown to the user with the file's name
        text = " ".join(str(exc).split())[:300]
        raise LogReadError(
            f"{ref.name}: cannot read sample {sample_id} epoch {epoch}: {type(exc).__name__}: {text}"
        ) from None
    return transcript_entries(sample, max_chars)


def _read_sample(ref: LogRef, sample_id: str, epoch: int):
    if ref.suffix == ".eval":
        with ref.open() as fh, ZipLog(fh, ref.name) as zf:
            key = f"{sample_id}_epoch_{epoch}"
            found = next((s for s in sample_layout(zf.names(), ref.name) if s.key == key), None)
            if found is not None and found.shape == "chunked":
                return _assemble(zf, found)
    from inspect_ai.log import read_eval_log_sample

    return read_eval_log_sample(ref.url, id=sample_id, epoch=epoch, resolve_attachments=True)


def _assemble(zf: ZipLog, members) -> Any:
    """A chunked sample as the ``EvalSample`` it was: shell + metadata + sequences."""
    from inspect_ai.log import EvalSample, resolve_sample_attachments

    shell = zf.json(members.member)
    messages = zf.sequence(members, "messages")
    refs = shell.pop("message_refs", None) or []
    shell["messages"] = [messages[i] for start, end in refs for i in range(start, end)]
    shell["metadata"] = zf.json(members.metadata) if members.metadata else {}
    shell["events"] = zf.sequence(members, "events")
    shell["events_data"] = {"messages": messages, "calls": zf.sequence(members, "calls")}
    shell["attachments"] = {str(i): text for i, text in enumerate(zf.sequence(members, "attachments"))}
    sample = EvalSample.model_validate(shell, context={"deserializing": True})
    return resolve_sample_attachments(sample, True)


def _text(content: Any) -> str:
    """A message's or output's text (images and other media are left out)."""
    text = getattr(content, "text", None)
    if isinstance(text, str):
        return text
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (getattr(c, "text", None) for c in content) if isinstance(t, str))
    return str(content or "")


def transcript_entries(sample: Any, max_chars: int = MAX_CHARS) -> list[dict[str, Any]]:
    """The entries of an ``EvalSample`` (its events resolved), in event order."""
    out: list[dict[str, Any]] = []
    step = 0

    def add(role: str, text: str) -> None:
        text = text.strip()
        if text:
            cut = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
            out.append({"n": len(out) + 1, "step": step, "role": role, "text": cut})

    add(
        "task",
        _text(sample.input)
        if isinstance(sample.input, str)
        else "\n".join(_text(m.content) for m in sample.input),
    )
    for event in sample.events:
        kind = getattr(event, "event", "")
        if kind == "model":
            step += 1  # what the agent is shown belongs to the step it answers
            shown = []
            for msg in reversed(event.input or []):  # what is new since the agent last spoke
                if msg.role == "assistant":
                    break
                shown.append(msg)
            for msg in reversed(shown):
                add("game", _text(msg.content) if msg.role != "system" else "")
            output = event.output
            add("agent", output.completion or (_text(output.message.content) if output.choices else ""))
        elif kind == "tool":
            result = event.result if isinstance(event.result, str) else _text(event.result)
            add("game", f"{event.function}: {result}" if result else "")
        elif kind == "info":
            add("info", event.data if isinstance(event.data, str) else str(event.data))
        elif kind == "score":
            sc = event.score
            add("score", f"{sc.value}" + (f" — {sc.explanation}" if sc.explanation else ""))
        elif kind == "error":
            add("error", event.error.message)
        elif kind == "sample_limit":
            add("limit", f"{event.type} limit: {event.message}")
    return out
