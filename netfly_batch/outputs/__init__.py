"""What is made from OUT files once a run wrote them: `merge`, `export` and `report`
(with `tallies`, `report_text`, and `report_html` with `report_charts` for --html), over
one shared reader (`read`) and one atomic writer (`atomic`).

Imports the batch layer (to read prompts) and the core, never the commands.
"""
