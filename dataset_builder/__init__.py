"""Builds the culturesim survey-values dataset from the raw GSS and WVS-7 sources."""
