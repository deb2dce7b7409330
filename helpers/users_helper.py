"""Users (semantics §6): logins per organisation, at most one timestamp per org per hour."""

from __future__ import annotations

from helpers import keys
from helpers.context import Context, Handler
from helpers.observations import LoginObs

# op: {'pc', 'login', LOGIN_ORG key, LOGIN_TIMESTAMPSET key, LOGIN_TIMESTAMP key, org, now}
# The set of this hour's organisations expires one hour after it was created.
LOGIN_PROC = r"""
  call('ZINCRBY', op[3], 1, op[6]); keep(op[3])
  if call('SADD', op[4], op[6]) == 1 then
    if call('TTL', op[4]) == -1 then call('EXPIRE', op[4], 3600) end
    call('SADD', op[5], op[7]); keep(op[5])
  end
"""


class Users:
    def __init__(self) -> None:
        self.handlers: dict[type, Handler] = {LoginObs: self.on_login}
        self.procs = {"login": LOGIN_PROC}

    def on_login(self, obs: LoginObs, ctx: Context) -> None:
        ctx.batch.call("login", keys.login_org(ctx.day), keys.login_timestampset(ctx.hour),
                       keys.login_timestamp(ctx.day), obs.org, int(ctx.now))
