"""Demo models for Fashion-MNIST."""

from tfdistill.models.fashion_mnist import build_student, build_teacher

__all__ = ["build_student", "build_teacher"]
