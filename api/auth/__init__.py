"""Who is calling (``principal``), what they may do (``access``), and signing in and out of the
dashboard (``router``)."""
