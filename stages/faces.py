"""DVC stage: faces (see dvc.yaml); usage: python stages/faces.py TASK.

The imports sit under the guard: the stage's worker processes are spawned, and each re-runs
this file's top level, which must not pull TensorFlow into them.
"""

if __name__ == "__main__":
    from facetl.cli import run_stage
    from facetl.pipeline import faces_stage

    run_stage(faces_stage)
