"""Using vexil through the OpenFeature SDK (vendor-neutral flag API).

    VEXIL_TARGET=127.0.0.1:50051 python clients/examples/openfeature_app.py

Application code depends only on `openfeature`; vexil is chosen once, at start-up, by
registering `VexilProvider`.
"""

from __future__ import annotations

from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from vexil.openfeature import VexilProvider


def main() -> None:
    api.set_provider_and_wait(VexilProvider(mode="local"))  # the rest from VEXIL_* variables
    try:
        flags = api.get_client("checkout-service")
        user = EvaluationContext(targeting_key="user-42", attributes={"country": "JP", "appVersion": "2.1.0"})
        banner = flags.get_string_details("banner-text", "Hello", user)
        print(f"banner-text = {banner.value!r} (variant {banner.variant}, reason {banner.reason})")
        print(f"max-results = {flags.get_integer_value('max-results', 10, user)}")
        print(f"theme = {flags.get_object_value('theme', {}, user)}")
    finally:
        api.shutdown()


if __name__ == "__main__":
    main()
