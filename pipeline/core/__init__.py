"""Shared primitives: robust noise, channel arithmetic, frames and transforms, optics."""
