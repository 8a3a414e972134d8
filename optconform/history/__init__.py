"""optconform history: the maths of one framework's optimizers across its real releases.

`environments` installs each listed release in a throwaway virtual environment and runs the matrix
there (CPU, float64 and float32); `tables` turns the recorded runs into docs/history/<framework>.md:
rows = cases, columns = releases, cells = matched rule · decay kind · verdict, and below it what
changed between consecutive releases, each change from `optconform diff` of the two real runs.
The releases and the requirements each needs live in `releases.toml`.
"""
