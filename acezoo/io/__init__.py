"""Safe, atomic file I/O."""
from acezoo.io.atomic import atomic_write, atomic_write_text
from acezoo.io.tree import load_tree, save_tree

__all__ = ["atomic_write", "atomic_write_text", "load_tree", "save_tree"]
