"""Training commands that rebuild rtseg's bundled shapes-world models from scratch."""
