"""failures"""
