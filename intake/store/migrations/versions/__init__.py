"""Migrations of intake's database, one file per revision, numbered 0001, 0002, …"""
