"""The study as configured: validation of the config (`config`, against `schema.yaml`) and the
plan of runs, analyses, figures and claims each experiment gets (`plan`)."""
