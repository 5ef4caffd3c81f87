"""A PyTorch twin of the vec2vec networks and training step, written from the published recipe
(see vec2text_c/csrc/align/vec2vec.h), for tests of the C trainer. Flat parameter arrays map
onto these modules with torch.nn.utils.vector_to_parameters (same order as the C layout)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _pad_residual(inp, out):
    w = min(inp.shape[1], out.shape[1])
    extra = torch.zeros_like(out)
    extra[:, :w] = inp[:, :w]
    return out + extra


class ResMLP(nn.Module):
    """Adapter / backbone: residual blocks, first Linear-SiLU, middle Linear-SiLU-Norm-Dropout,
    last Linear-Dropout-SiLU-Linear."""

    def __init__(self, depth, d_in, d_h, d_out, norm="batch", dropout=0.0, dtype=torch.float64):
        super().__init__()
        Norm = nn.BatchNorm1d if norm == "batch" else nn.LayerNorm
        blocks = []
        for i in range(depth):
            if i == 0:
                o = d_out if depth == 1 else d_h
                blocks.append(nn.Sequential(nn.Linear(d_in, o, dtype=dtype), nn.SiLU()))
            elif i < depth - 1:
                blocks.append(nn.Sequential(nn.Linear(d_h, d_h, dtype=dtype), nn.SiLU(), Norm(d_h, dtype=dtype),
                                            nn.Dropout(dropout)))
            else:
                blocks.append(nn.Sequential(nn.Linear(d_h, d_h, dtype=dtype), nn.Dropout(dropout), nn.SiLU(),
                                            nn.Linear(d_h, d_out, dtype=dtype)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for b in self.blocks:
            x = _pad_residual(x, b(x))
        return x

    def set_stats(self, flat):
        off = 0
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.as_tensor(flat[off:off + n]))
                m.running_var.copy_(torch.as_tensor(flat[off + n:off + 2 * n]))
                off += 2 * n
        assert off == len(flat)

    def get_stats(self):
        parts = []
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                parts += [m.running_mean, m.running_var]
        return torch.cat(parts).detach().numpy() if parts else torch.zeros(0).numpy()


class Disc(nn.Module):
    def __init__(self, depth, d_in, width, dtype=torch.float64):
        super().__init__()
        if depth == 1:
            layers = [nn.Linear(d_in, 1, dtype=dtype)]
        else:
            layers = [nn.Linear(d_in, width, dtype=dtype)]
            for _ in range(depth - 2):
                layers += [nn.SiLU(), nn.Linear(width, width, dtype=dtype), nn.LayerNorm(width, dtype=dtype)]
            layers += [nn.SiLU(), nn.Linear(width, 1, dtype=dtype)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def vsp(e, p):
    ee, pp, pe = e @ e.T, p @ p.T, p @ e.T
    return (ee - pp).abs().mean() + (ee - pe).abs().mean()


def cos_loss(e, p):
    return 1 - F.cosine_similarity(e, p, dim=1).mean()


class Twin:
    """The five networks, three discriminators, optimisers and warm-up of one vec2vec run."""

    def __init__(self, cfg, sizes, params, stats, disc_params, dtype=torch.float64):
        c = {**DEFAULTS, **cfg}
        self.c, self.dtype = c, dtype
        norm = "batch" if c["norm"] == 0 else "layer"
        d1, d2, dl = c["d1"], c["d2"], c["d_latent"]
        self.mods = {
            "A1": ResMLP(c["adapter_depth"], d1, c["d_hidden"], dl, norm, c["dropout"], dtype),
            "A2": ResMLP(c["adapter_depth"], d2, c["d_hidden"], dl, norm, c["dropout"], dtype),
            "T": ResMLP(c["backbone_depth"], dl, c["d_backbone"], dl, norm, c["dropout"], dtype),
            "B1": ResMLP(c["adapter_depth"], dl, c["d_hidden"], d1, norm, c["dropout"], dtype),
            "B2": ResMLP(c["adapter_depth"], dl, c["d_hidden"], d2, norm, c["dropout"], dtype),
        }
        self.discs = {k: Disc(c["disc_depth"], d, c["disc_width"], dtype)
                      for k, d in (("D1", d1), ("D2", d2), ("DL", dl))}
        for k, m in self.mods.items():
            off, n, soff, sn = sizes[k]
            nn.utils.vector_to_parameters(torch.as_tensor(params[off:off + n], dtype=dtype), m.parameters())
            m.set_stats(stats[soff:soff + sn])
            m.train()
        for k, d in self.discs.items():
            off, n = sizes[k]
            nn.utils.vector_to_parameters(torch.as_tensor(disc_params[off:off + n], dtype=dtype), d.parameters())
        self.gen_params = [p for k in ("A1", "A2", "T", "B1", "B2") for p in self.mods[k].parameters()]
        betas = (c["beta1"], c["beta2"])
        lam = (lambda s: min(1.0, s / c["warmup"])) if c["warmup"] > 0 else (lambda s: 1.0)
        self.gen_opt = torch.optim.Adam(self.gen_params, lr=c["lr_gen"], betas=betas, eps=c["eps_gen"])
        self.gen_sched = torch.optim.lr_scheduler.LambdaLR(self.gen_opt, lam)
        self.disc_opt, self.disc_sched = {}, {}
        for k, d in self.discs.items():
            self.disc_opt[k] = torch.optim.Adam(d.parameters(), lr=c["lr_disc"], betas=betas, eps=c["eps_disc"])
            self.disc_sched[k] = torch.optim.lr_scheduler.LambdaLR(self.disc_opt[k], lam)

    def gen_flat_grad(self):
        return torch.cat([p.grad.reshape(-1) for p in self.gen_params]).detach().numpy()

    def gen_flat(self):
        return nn.utils.parameters_to_vector(self.gen_params).detach().numpy()

    def disc_flat(self):
        return torch.cat([nn.utils.parameters_to_vector(self.discs[k].parameters()) for k in ("D1", "D2", "DL")]
                         ).detach().numpy()

    def stats(self):
        import numpy as np

        return np.concatenate([self.mods[k].get_stats() for k in ("A1", "A2", "T", "B1", "B2")])

    def step(self, x, y, update_disc=True, update_gen=True, keep_grad=True):
        c, M = self.c, self.mods
        x = torch.as_tensor(x, dtype=self.dtype)
        y = torch.as_tensor(y, dtype=self.dtype)
        # forward: y then x, each latent through B2 then B1
        ly = M["T"](M["A2"](y))
        rec_y, t_yx = F.normalize(M["B2"](ly), dim=1), F.normalize(M["B1"](ly), dim=1)
        lx = M["T"](M["A1"](x))
        t_xy, rec_x = F.normalize(M["B2"](lx), dim=1), F.normalize(M["B1"](lx), dim=1)
        out = {}
        gen = {}
        for k, real, fake, w in (("x", x, t_yx, c["w_gan"]), ("y", y, t_xy, c["w_gan"]),
                                 ("latent", ly, lx, c["w_latent_gan"])):
            if w == 0:
                gen[k] = torch.zeros(())
                continue
            key = {"x": "D1", "y": "D2", "latent": "DL"}[k]
            D, opt = self.discs[key], self.disc_opt[key]
            r, f = D(real.detach()), D(fake.detach())
            dloss = 0.5 * ((r ** 2).mean() + ((f - 1) ** 2).mean())
            opt.zero_grad()
            dloss.backward()
            nn.utils.clip_grad_norm_(D.parameters(), c["max_grad_norm"])
            if update_disc:
                opt.step()
                self.disc_sched[key].step()
            out["disc_" + k] = dloss.item()
            for p in D.parameters():
                p.requires_grad_(False)
            gen[k] = 0.5 * (D(fake) ** 2).mean()
            for p in D.parameters():
                p.requires_grad_(True)
            out["gen_" + k] = gen[k].item()
        # cycle pass on the detached translations
        lcx = M["T"](M["A1"](t_yx.detach()))
        if c["norm"] == 0:
            M["B1"](lcx)
        back_y = F.normalize(M["B2"](lcx), dim=1)
        lcy = M["T"](M["A2"](t_xy.detach()))
        back_x = F.normalize(M["B1"](lcy), dim=1)
        if c["norm"] == 0:
            M["B2"](lcy)
        rec = 0.5 * (cos_loss(y, rec_y) + cos_loss(x, rec_x))
        vsp_ = 0.5 * (vsp(y, rec_y) + vsp(x, rec_x))
        cc = 0.5 * (cos_loss(y, back_y) + cos_loss(x, back_x))
        cc_vsp = 0.5 * (vsp(y, back_y) + vsp(x, back_x))
        loss = (c["w_rec"] * rec + c["w_vsp"] * vsp_ + c["w_cc"] * cc + c["w_cc_vsp"] * cc_vsp
                + c["w_gan"] * (gen["x"] + gen["y"]) + c["w_latent_gan"] * gen["latent"])
        self.gen_opt.zero_grad()
        loss.backward()
        out.update(loss=loss.item(), rec=rec.item(), vsp=vsp_.item(), cc=cc.item(), cc_vsp=cc_vsp.item())
        if keep_grad:
            out["grad"] = self.gen_flat_grad()
            out["grad_norm"] = float((out["grad"] ** 2).sum() ** 0.5)
        if update_gen:
            nn.utils.clip_grad_norm_(self.gen_params, c["max_grad_norm"])
            self.gen_opt.step()
            self.gen_sched.step()
        return out


DEFAULTS = dict(d_latent=1024, d_hidden=1024, d_backbone=1024, adapter_depth=3, backbone_depth=4, disc_depth=5,
                disc_width=1024, norm=0, dropout=0.1, w_rec=1.0, w_vsp=1.0, w_cc=10.0, w_cc_vsp=10.0, w_gan=1.0,
                w_latent_gan=1.0, lr_gen=2e-5, lr_disc=1e-5, beta1=0.5, beta2=0.999, eps_gen=1e-8,
                eps_disc=6.25e-10, warmup=2000, max_grad_norm=1000.0)
