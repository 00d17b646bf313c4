"""Reports stakeholders read: Allure results, JUnit XML, a status page per stage, and the
end-of-run summary on the terminal. Written by ``stagecheck.reporting.plugin``; the Allure
HTML report is rendered from the results by ``scripts/report`` (``stagecheck.reporting.html``).

Steps record the versions they see through the session fixture ``seen_versions``
(a ``SeenVersions``); they reach the environment of every report.
"""

from stagecheck.reporting.versions import SeenVersions

__all__ = ["SeenVersions"]
