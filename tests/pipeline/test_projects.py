"""Projects: a locked key ignores floopy-project-id; otherwise the header (a project of the
key's organization, else 403), then the key's default project, then the organization's."""

from __future__ import annotations

import pytest

from floopy import errors
from floopy.pipeline.auth.projects import Projects
from floopy.settings import ApiKeyEntry, OrganizationConfig, Settings

HASH = "sha256:" + "0" * 64


def key(n: int, organization: str, project: str | None = None, locked: bool = False) -> ApiKeyEntry:
    return ApiKeyEntry(
        id=f"k{n}",
        hash=HASH[:-2] + f"{n:02d}",
        organization=organization,
        project=project,
        locked_to_project=locked,
    )


PLAIN = key(1, "acme")
WITH_DEFAULT = key(2, "acme", "mobile")
LOCKED = key(3, "acme", "batch", locked=True)
GLOBEX = key(4, "globex", "secret")
LONE = key(5, "initech")

PROJECTS = Projects(
    Settings(
        api_keys=(PLAIN, WITH_DEFAULT, LOCKED, GLOBEX, LONE),
        organizations={"acme": OrganizationConfig(projects=("web",), default_project="main")},
    )
)


@pytest.mark.parametrize(
    ("entry", "header", "project"),
    [
        (PLAIN, None, "main"),  # the organization's default project
        (WITH_DEFAULT, None, "mobile"),  # the key's own project first
        (PLAIN, "web", "web"),  # listed in ORGANIZATIONS
        (PLAIN, "mobile", "mobile"),  # another acme key's project belongs to acme
        (PLAIN, "main", "main"),  # the default project belongs to it too
        (LOCKED, None, "batch"),
        (LOCKED, "web", "batch"),  # locked: the header is ignored
        (LOCKED, "secret", "batch"),  # ... even naming another organization's project
        (GLOBEX, None, "secret"),
        (LONE, None, None),  # no default anywhere
    ],
)
def test_resolution(entry: ApiKeyEntry, header: str | None, project: str | None) -> None:
    assert PROJECTS.resolve(entry, header) == project


@pytest.mark.parametrize(("entry", "header"), [(PLAIN, "secret"), (GLOBEX, "web"), (LONE, "x")])
def test_another_organizations_project_is_forbidden(entry: ApiKeyEntry, header: str) -> None:
    with pytest.raises(errors.Forbidden) as caught:
        PROJECTS.resolve(entry, header)
    assert caught.value.status == 403 and caught.value.code == "FORBIDDEN"
    assert caught.value.param == "floopy-project-id"
    assert entry.organization in caught.value.message
