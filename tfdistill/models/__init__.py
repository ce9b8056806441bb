"""Demo models for Fashion-MNIST."""

from tfdistill.models.fashion_mnist import build_separable_student, build_student, build_teacher

__all__ = ["build_separable_student", "build_student", "build_teacher"]
