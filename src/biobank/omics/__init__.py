"""Omics datasets (WGS, WES, RNA-seq, methylation, proteomics, metabolomics) linked to specimens."""
