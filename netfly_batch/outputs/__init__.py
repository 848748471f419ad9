"""What is made from OUT files once a run wrote them: `merge` (and export, report).

Imports the batch layer (to read prompts), the core, never the commands.
"""
