"""dfdc on Kaggle: the utility dataset, the kernels, the Kaggle API calls and local dry runs.

The names below are shared by the committed kernel folders (kernels/), `dfdc kaggle push`,
which fills in the owner, and `dfdc kaggle dry-run`, which mounts inputs under these names.
"""

COMPETITION = "deepfake-detection-challenge"
UTILITY = "dfdc-utility"  # slug of the dataset `dfdc kaggle build-dataset` makes
OWNER_PLACEHOLDER = "your-kaggle-username"  # the owner in committed metadata, as in kaggle.json.example
