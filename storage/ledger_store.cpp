// placeholder: implemented by its module's first commit
