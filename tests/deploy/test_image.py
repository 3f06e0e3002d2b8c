"""The container image, built and run as a cluster runs it (what `make image-test` does): podman
(installed by `.ci/run`) builds the Containerfile on a local Debian base and runs it with a
read-only root filesystem and no capabilities; from the host, grpcurl sees health SERVING and an
Evaluate answer, /readyz answers 200, the process runs as a non-root uid, and SIGTERM ends it
with exit code 0 after the drain and within drain + grace."""

from __future__ import annotations

import shutil

import pytest

from scripts import image

EXPECTED_EVALUATION = {"string_value": "konnichiwa", "variant": "jp", "reason": "REASON_TARGETING_MATCH"}
"""What the flag in `image.FLAGS` answers for country JP: written here from the flag, not taken
from the server."""


@pytest.mark.timeout(1500)
def test_the_image_serves_and_stops_cleanly() -> None:
    if shutil.which("podman") is None:  # no daemon-based engine runs where the suite runs
        pytest.fail(image.INSTALL_HINT)
    engine = image.engine()
    image.ensure_local_base(engine)
    image.build(engine, image.TEST_TAG, image.LOCAL_BASE)
    report = image.check(engine, image.TEST_TAG)
    print(
        f"image {report.size_bytes / 1e6:.0f} MB; SERVING {report.start_to_serving_s:.1f} s after run; "
        f"SIGTERM -> exit in {report.stop_seconds:.1f} s"
    )

    assert report.health == {"status": "SERVING"}
    assert {k: report.evaluation.get(k) for k in EXPECTED_EVALUATION} == EXPECTED_EVALUATION
    assert report.readyz_status == 200
    assert report.uid != 0
    assert report.exposed_ports == ("3001/tcp", "50051/tcp")
    assert report.exit_code == 0
    drain, grace = image.DRAIN_SECONDS, image.SHUTDOWN_GRACE
    # It drained (so SIGTERM reached the server's handler, not a default action) and then
    # stopped inside the grace a supervisor gives it.
    assert drain <= report.stop_seconds <= drain + grace, report.stop_seconds
    assert image.problems_of(report) == []
