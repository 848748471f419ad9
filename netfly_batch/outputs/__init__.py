"""What is made from OUT files once a run wrote them: `merge`, `export` (a report
belongs here too), over one shared reader (`read`).

Imports the batch layer (to read prompts) and the core, never the commands.
"""
