"""Layer score priors for any world, as one pipeline (``python -m bench.scores``):

invert (ILO inversions of the world's training images, as cells on the sweep's executors, into a
resumable store of states) -> train (denoising score matching on those states, resumable) ->
install (the trained prior becomes the world's score model of that layer). The official SGILO
code ships no training code; the paper inverted all of FFHQ to train its layer priors.
"""
