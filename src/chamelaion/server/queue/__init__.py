"""The job queue: how a lip-sync job travels from a committed row to a rendered output.

- `jobs`: the store, the single source of truth. A few verbs (submit, claim, heartbeat,
  complete, fail, cancel), each transition one conditional UPDATE, so no job runs twice and
  none is lost; the "job finished" hooks run inside the transition's transaction.
- `hooks`: what follows a job's end (a webhook owed, its segments forgotten), in one place.
- `worker`: one worker process running one job: claim, fetch the inputs, run the engine with a
  heartbeat, report the outcome.
- Two transports hand jobs to workers, both over the same store:
  `runner` (embedded: worker processes beside the API, the default) and
  `celery_app` + `dispatch` (scale-out: Celery workers on other machines, messages in Redis
  that may be lost or duplicated without harm, a sweep that republishes what was lost).

Nothing here is imported by the API's request path beyond the store and the hooks: the engine
is imported by `worker` only, in worker processes.
"""
