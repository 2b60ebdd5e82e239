"""The optimizer lab's specs, torch-free so the api validates them: races of solvers on 2-D test
functions and loss landscapes of trained runs."""
