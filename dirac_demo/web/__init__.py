"""The demo page's layer between ``app.py`` (layout and wiring) and the pipeline, one job per module.

Without gradio:

* :mod:`.settings`: the page's limits and defaults; the settings of a run and a view (dataclasses);
* :mod:`.api`: the arguments of a run checked, for the page and ``/enhance`` and ``/decode``;
* :mod:`.controls`: the codec choices and rate sliders, from the codec table;
* :mod:`.runs`: the pipeline's runs as the page starts them (ZeroGPU's ``spaces.GPU`` when present);
* :mod:`.state`: one run's record, kept in ``gr.State`` and changed through its methods;
* :mod:`.files`: a run's files and the uploads read;
* :mod:`.examples`: the examples, their thumbnails and cached runs;
* :mod:`.paint`, :mod:`.crop`, :mod:`.plane`: the protect mask, the crop and the
  distortion–perception plane of a run's kept frames;
* :mod:`.text`: every sentence the page shows, and the status line.

With gradio: :mod:`.adapter` (the handlers, and the one loop from events to a record),
:mod:`.updates` (what a panel shows of a record), :mod:`.painting` (the paint editor's handlers)
and :mod:`.panel` (a tab's result components).
"""
