"""What a reader sees: figures (`style`, `figures`, `exit_figures`), tables (`tables`,
`exit_tables`) and the study summary (`summary`)."""
