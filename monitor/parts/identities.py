"""The identity verdict of every member: fingerprints kept, each model judged again on a new one.

The recorder hands every identity probe's result here. The last fingerprint of each (model, host)
is kept (a failed probe leaves it as it was); a new one re-judges its whole model, since one host's
answer may change the majority (`monitor.core.identity.judge`), and every member whose verdict
changed is rendered again. The publisher reads `verdicts`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from monitor.core.identity import Fingerprint, Identity, judge
from monitor.core.keys import HostKey
from monitor.core.results import ProbeResult
from monitor.parts.fleet import Fleet


class Identities:
    def __init__(
        self, fleet: Fleet, tolerance: float = 0.5, references: Mapping[str, Fingerprint] | None = None
    ) -> None:
        self._fleet = fleet
        self._tolerance = tolerance
        self._references: Mapping[str, Fingerprint] = references or {}
        self._fingerprints: dict[str, dict[str, Fingerprint]] = {}  # model -> host -> its last
        self.verdicts: dict[HostKey, Identity] = {}

    def take(self, result: ProbeResult) -> None:
        """Keep an identity probe's fingerprint and judge its model again."""
        fp = result.fingerprint
        key = HostKey(result.model, result.host)
        if not result.ok or fp is None or key not in self._fleet.health:
            return
        self.keep(key, fp)

    def keep(self, key: HostKey, fp: Fingerprint) -> None:
        """Keep a member's fingerprint (probed here, or read back from the store) and judge its
        model again."""
        if key not in self._fleet.health:
            return
        self._fingerprints.setdefault(key.model, {})[key.host] = fp
        self._judge(key.model)

    def fingerprint(self, key: HostKey) -> Fingerprint | None:
        """A member's last fingerprint (None: none yet)."""
        return self._fingerprints.get(key.model, {}).get(key.host)

    def _judge(self, model: str) -> None:
        fps = self._fingerprints.get(model, {})
        for host, verdict in judge(fps, self._tolerance, self._references.get(model)).items():
            key = HostKey(model, host)
            if self.verdicts.get(key) != verdict:
                self.verdicts[key] = verdict
                self._fleet.touch(key)

    def retain(self, _models: set[str]) -> Iterator[None]:
        """Forget the fingerprints of members gone or no longer trusted, and judge their models
        again (a fleet listener, in steps of a model)."""
        health = self._fleet.health
        for model in list(self._fingerprints):
            hosts = self._fingerprints[model]
            gone = [h for h in hosts if (e := health.get(HostKey(model, h))) is None or not e.trusted]
            if gone:
                for host in gone:
                    del hosts[host]
                    self.verdicts.pop(HostKey(model, host), None)
                if not hosts:
                    del self._fingerprints[model]
                self._judge(model)
            yield None
