"""Consumer services of the job topics, one per job type family."""
