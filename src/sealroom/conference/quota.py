"""What one client may do at the conferencing service: posts per second per connection
(a :class:`~sealroom.ops.limits.TokenBucket`, shared with the key service's limits),
distinct meetings per user per time window, and channels open at once per user. The
clocked ones take ``now`` (monotonic) and never read a clock, so tests use plain numbers."""

from __future__ import annotations

from collections import OrderedDict

from sealroom.ops.limits import TokenBucket

__all__ = ["MeetingWindow", "OpenChannels", "TokenBucket"]


class MeetingWindow:
    """At most ``limit`` distinct meetings per user within any ``window`` seconds: opening a
    channel to a meeting the user opened within the window again is always allowed. Users
    whose window is empty are forgotten, so memory follows the recently active users."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a meeting window needs limit >= 1 and window > 0")
        self.limit, self.window = limit, window
        self._users: OrderedDict[str, OrderedDict[str, float]] = OrderedDict()

    def allow(self, user: str, meeting: str, now: float) -> bool:
        self._forget_idle_users(now)
        opened = self._users.get(user)
        if opened is None:
            opened = self._users[user] = OrderedDict()
        self._users.move_to_end(user)
        while opened and next(iter(opened.values())) <= now - self.window:
            opened.popitem(last=False)
        if meeting not in opened and len(opened) >= self.limit:
            return False
        opened[meeting] = now
        opened.move_to_end(meeting)
        return True

    def _forget_idle_users(self, now: float) -> None:
        while self._users:
            user, opened = next(iter(self._users.items()))
            if opened and next(reversed(opened.values())) > now - self.window:
                return
            del self._users[user]

    def __len__(self) -> int:
        return len(self._users)


class OpenChannels:
    """At most ``limit`` channels open at once per user (all meetings, this process)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a channel limit needs limit >= 1")
        self.limit = limit
        self._open: dict[str, int] = {}

    def open(self, user: str) -> bool:
        """Count one more channel for ``user``, unless it has ``limit`` open already."""
        count = self._open.get(user, 0)
        if count >= self.limit:
            return False
        self._open[user] = count + 1
        return True

    def close(self, user: str) -> None:
        left = self._open.get(user, 0) - 1
        if left > 0:
            self._open[user] = left
        else:
            self._open.pop(user, None)

    def __len__(self) -> int:
        return len(self._open)
