"""Every image deploy/ and the Dockerfile use has a pinned version tag: never `latest`."""

from __future__ import annotations

import re

import pytest

from wa_bridge import __version__

from ._files import all_images, compose, dockerfile_images, k8s_objects, pod_spec

# name:tag where the tag starts with a version number (v1.2, 3.9.0, 16.4, 3.11.13-slim-…)
PINNED = re.compile(r"^[a-z0-9][a-z0-9./_-]*:v?\d+(\.\d+)+[A-Za-z0-9._-]*(@sha256:[0-9a-f]{64})?$")


@pytest.mark.parametrize(("where", "image"), all_images())
def test_image_tag_is_a_pinned_version(where: str, image: str) -> None:
    assert PINNED.match(image), f"{where}: {image!r} is not pinned to a version"
    assert ":latest" not in image


def test_images_are_found_everywhere() -> None:
    places = {where.split(":")[0] for where, _ in all_images()}
    assert {"Dockerfile", "compose.yaml"} <= places
    assert any(p.startswith("k8s/") for p in places)
    assert len(dockerfile_images()) == 2  # build stage and runtime stage


def test_our_image_is_the_package_version() -> None:
    ours = {
        s["image"] for s in compose()["services"].values() if s["image"].startswith("wa-bridge")
    }
    for _, obj in k8s_objects():
        spec = pod_spec(obj)
        ours |= {c["image"] for c in (spec or {}).get("containers", [])}
    assert ours == {f"wa-bridge:{__version__}"}
