"""The optimizer lab's jobs, run by a lab worker (``descent worker --queue lab``): races of
solvers on 2-D test functions (``worker.lab.race``) and loss landscapes of finished runs
(``worker.lab.landscape``).  They are short and bounded, so they run in the worker process, not
in a supervised child."""
