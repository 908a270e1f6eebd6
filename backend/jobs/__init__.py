"""Long imports and exports as jobs, on PostgreSQL's own queue (procrastinate), or in-process on SQLite.

- `service.JobService`: what the admin and the CLI ask for: submit, "my jobs",
  one job (another user's is NotFound), its result file, retry.
- `runner.run_job`: one attempt at a job, as its owner: claims the row, runs
  its kind, records done or failed with a sentence for a person.
- `kinds`: the registered kinds (`exchange.run_export`, `exchange.run_import`,
  `exchange.run_preview`), each `async def (run, job) -> None`; `context.JobRun`
  is what they get.
- `previews`: "Import these rows" on a done preview job: the import job of its file.
- `queue`: the procrastinate app, the worker, and the handling of jobs whose
  worker died (heartbeats): failed with a reason, ready to retry.
- `files`: where a job's upload and result live (`Settings.job_files_dir`).
- `store.JobRepository`: the job table's queries, every status change guarded
  by the status it expects.
"""
