"""The GPU check says plainly when there is no CUDA, and its tests are registered as ``cuda``."""
import pytest
import torch

from dirac_demo.eval import gpu_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run")
def test_without_cuda_the_check_says_so_and_exits_2(capsys):
    assert gpu_check.main([]) == 2
    assert capsys.readouterr().out.startswith("no CUDA")


def test_the_cuda_tests_exist_and_are_marked(pytestconfig):
    text = (gpu_check.ROOT / "tests" / "test_cuda.py").read_text()
    assert "pytest.mark.cuda" in text and "torch.cuda.is_available()" in text
    assert any(line.strip().startswith("cuda:") for line in pytestconfig.getini("markers"))
