"""What is made from OUT files once a run wrote them: `merge`, `export` and `report`
(with `report_text`), over one shared reader (`read`) and one atomic writer (`atomic`).

Imports the batch layer (to read prompts) and the core, never the commands.
"""
