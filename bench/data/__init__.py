"""Datasets: Fashion-MNIST idx files, FFHQ-style image folders, the committed eval set."""
