"""The local moto server forgets the dashboard's references to every object it created."""

from __future__ import annotations

from typing import Any

from moto.core.common_models import BaseModel

from klaxon import moto_server


class Thing(BaseModel):
    """A moto model, as every DynamoDB item and SQS message is one."""


def test_tracked_instances_stay_bounded_and_requests_still_answered() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        Thing()
        return [b"ok"]

    wsgi = moto_server.serialised(app)
    put = {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}
    answers = [wsgi(put, None) for _ in range(3 * moto_server.FORGET_EVERY)]
    assert all(list(a) == [b"ok"] for a in answers)
    assert len(Thing.instances_tracked) < moto_server.FORGET_EVERY  # without the reset: 1,500
