"""Helpers of the reliability tests (issue 7): the hostile-upload corpus, snapshots of what is on
disk, and the recorder that feeds docs/reliability.md."""
