"""Which project a request belongs to (after auth, before rate limits).

A key locked to a project always uses it and ignores ``floopy-project-id``. Otherwise the
header wins, but only with a project of the key's own organization (403 FORBIDDEN else, so
one tenant cannot log or spend under another's project); then the key's default project;
then the organization's default project (``ORGANIZATIONS``); else none.

An organization's projects are those listed in ``ORGANIZATIONS`` and the projects its keys
name, so a key's own project never needs listing twice.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from floopy import errors

if TYPE_CHECKING:
    from floopy.settings import ApiKeyEntry, Settings


class Projects:
    def __init__(self, settings: Settings) -> None:
        owned: defaultdict[str, set[str]] = defaultdict(set)
        self._defaults: dict[str, str] = {}
        for name, organization in settings.organizations.items():
            owned[name].update(organization.projects)
            if organization.default_project is not None:
                owned[name].add(organization.default_project)
                self._defaults[name] = organization.default_project
        for key in settings.api_keys:
            if key.project is not None:
                owned[key.organization].add(key.project)
        self._owned = {name: frozenset(projects) for name, projects in owned.items()}

    def resolve(self, key: ApiKeyEntry, requested: str | None) -> str | None:
        """The request's project; raises Forbidden for another organization's project."""
        if key.locked_to_project:
            return key.project
        if requested is not None:
            if requested not in self._owned.get(key.organization, ()):
                raise errors.Forbidden(
                    f"project '{requested}' (floopy-project-id) does not belong to this "
                    f"key's organization '{key.organization}'",
                    param="floopy-project-id",
                )
            return requested
        return key.project or self._defaults.get(key.organization)
