"""Forms, split by sub-domain. Forms only shape input; the actions validate and decide."""
