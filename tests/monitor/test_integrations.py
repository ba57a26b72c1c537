"""The monitor on real short runs through each integration: plain loop (see test_checks),
Hugging Face Trainer and Lightning; events reach the store and TensorBoard."""

from __future__ import annotations

import torch

from faultlens.monitor.config import MonitorConfig
from faultlens.monitor.health import HealthMonitor
from faultlens.organisms.data import tasks
from faultlens.organisms.model import OrganismConfig, OrganismLM
from faultlens.store import Store


def test_hf_trainer_callback_records_events_and_findings(tmp_path):
    from torch.utils.data import Dataset
    from transformers import Trainer, TrainingArguments

    from faultlens.models.tiny import tiny_model
    from faultlens.monitor.hf import FaultlensTrainerCallback

    torch.set_num_threads(1)
    model = tiny_model("llama", seed=0, attn_implementation="sdpa").train()

    class Toy(Dataset):
        def __len__(self):
            return 32

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            ids = torch.randint(3, 500, (16,), generator=g)
            return {"input_ids": ids, "labels": ids.clone()}

    store = Store(tmp_path / "s.sqlite")
    mon = HealthMonitor(MonitorConfig(every=2), store=store)
    args = TrainingArguments(output_dir=str(tmp_path / "o"), max_steps=6, per_device_train_batch_size=4,
                             learning_rate=1e-3, report_to=[], logging_steps=100, save_strategy="no",
                             use_cpu=True, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=Toy(), callbacks=[FaultlensTrainerCallback(mon)]).train()
    names = {n for _, n, _ in mon.events}
    assert {"loss", "attn.entropy.min", "attn.max_logit", "grad.norm.total"} <= names
    assert mon.probe is not None and mon.probe.shape == (4, 16)
    assert store.count("monitor_events", mon.run_id) == len(mon.events)


def test_lightning_callback_and_tensorboard(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from faultlens.monitor.lightning import FaultlensLightningCallback
    from faultlens.organisms.train import lm_loss

    torch.set_num_threads(1)
    task = tasks.get("stdlib_chars")(n_chars=50_000)
    x, y = task.sample(torch.Generator().manual_seed(0), 64, 32, "train")

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = OrganismLM(OrganismConfig(d_model=32, n_head=2, n_layer=2, block_size=32))

        def training_step(self, batch, _):
            return lm_loss(self.model(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    store = Store(tmp_path / "s.sqlite")
    mon = HealthMonitor(MonitorConfig(every=2, tensorboard_dir=str(tmp_path / "tb")), store=store)
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[FaultlensLightningCallback(mon)])
    trainer.fit(Module(), DataLoader(TensorDataset(x, y), batch_size=8))
    steps = sorted({s for s, n, _ in mon.events if n == "loss"})
    assert steps == list(range(6))
    assert any(n.startswith("grad.norm.L") for _, n, _ in mon.events)
    assert store.count("monitor_events", mon.run_id) == len(mon.events)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
